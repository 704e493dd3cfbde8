"""The outbox: what a page says, how each channel sends it, and the dispatcher that delivers it.

context.py     the typed, versioned page context stored with every queued page
budgets.py     how many characters each kind of page may hold
render.py      Jinja2 page templates (templates/) per channel kind and event, within budgets
view.py        what a template sees: variables made from the page context, and the filters
fit.py         cutting a body to its budget at section boundaries, never inside code
template_checks.py  checking, sampling and exporting the templates
preview.py     the pages a dry run shows, rendered but never sent
channels/      PagerDuty (Events API v2), Apprise and the log channel (adapters)
dispatcher.py  claims due pages, sends them, records the outcome, retries (runtime)
"""
