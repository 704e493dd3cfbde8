"""How many characters each kind of page may hold: one set of figures for templates and excerpts.

Each figure cites where it comes from. `render.py` cuts pages to these, the runbook excerpt fits
into what a page leaves, and `channels/apprise.py` chooses one by the target's URL scheme.
"""

from __future__ import annotations

# PagerDuty Events API v2: `payload.summary` is at most 1024 characters ("Send an Alert Event").
PAGERDUTY_SUMMARY_BUDGET = 1024
# PagerDuty refuses an event larger than 512 KB (Events API v2 overview); the runbook excerpt in
# `custom_details` stays far below that, so that a page stays readable in the PagerDuty app.
PAGERDUTY_BUDGET = 8_000
# Slack's chat.postMessage documentation asks for message text under 4,000 characters; chat
# targets of every kind get the same room.
CHAT_BUDGET = 3_500
EMAIL_BUDGET = 20_000
# One SMS segment is 160 GSM-7 characters (3GPP TS 23.038).
SMS_BUDGET = 160

# The runbook excerpt's room per kind of channel.
BUDGETS = {
    "pagerduty": PAGERDUTY_BUDGET,
    "slack": CHAT_BUDGET,
    "email": EMAIL_BUDGET,
    "sms": SMS_BUDGET,
}
