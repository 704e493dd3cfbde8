"""The Apprise channel: a title and a Markdown body to any Apprise URL (Slack, email, SMS...).

Every event is told: the first page, escalations, the acknowledgement and the resolution, so the
people who were paged also learn that it is handled or over. What the page looks like depends on
the target: Apprise says how long a body its service takes (`body_maxlen`); targets of at most one
SMS segment get the short `sms` templates, the others the Markdown `apprise` templates, within the
budget of their kind (email, chat).

Apprise reports only success or failure (a boolean; Apprise 2 wraps it in a result that is truthy
on success), not why: so every failed notification is retryable (`apprise_failed`), and the outbox
gives up at the page's deadline. The URL holds secrets (tokens, passwords): it is never logged nor
put in an error; the target's label (`apprise:mailto`) names it instead.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import warnings
from typing import Any

from router.errors import DeliveryError, FailureReason
from router.outbox.budgets import CHAT_BUDGET, EMAIL_BUDGET, SMS_BUDGET
from router.outbox.channels.base import Delivery, Sent
from router.outbox.render import PageFormat, Renderer

# Apprise loads its plugins on first use, and one of them imports the standard library's `imghdr`,
# deprecated since Python 3.11 (PEP 594). They are loaded here, once, with that one warning
# silenced: it is Apprise's to fix, and tests run with warnings as errors.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
    import apprise
    from apprise.manager_plugins import NotificationManager

    NotificationManager().load_modules()  # type: ignore[no-untyped-call]

# Targets whose messages are SMS although Apprise allows them longer bodies.
SMS_SCHEMES = frozenset({"sns", "twilio", "plivo", "clicksend", "vonage", "nexmo"})
# Characters of body per URL scheme, where a kind of target reads more than a chat message.
SCHEME_BUDGETS = {
    "mailto": EMAIL_BUDGET,
    "mailtos": EMAIL_BUDGET,
    "json": EMAIL_BUDGET,
    "jsons": EMAIL_BUDGET,
    "xml": EMAIL_BUDGET,
    "xmls": EMAIL_BUDGET,
    "form": EMAIL_BUDGET,
    "forms": EMAIL_BUDGET,
}
# A service that takes no separate title gets it as the first line of the body.
MERGED_TITLE_BUDGET = 200
DEFAULT_TITLE_BUDGET = 250
# An Apprise call that takes longer than this is abandoned and retried by the outbox.
NOTIFY_TIMEOUT = 60.0
# Apprise logs the URLs it posts to at DEBUG and INFO, tokens in their paths included (its password
# masking does not cover paths), and so does urllib3 under it. Their warnings and errors name the
# service and the failure, not the URL: only those are let through, whatever ROUTER_LOG_LEVEL says.
QUIET_LOGGERS = ("apprise", "urllib3")


def apprise_format(scheme: str, body_maxlen: int, title_maxlen: int) -> PageFormat:
    """The page format for an Apprise target, from its scheme and its service's limits."""
    if scheme in SMS_SCHEMES or 0 < body_maxlen <= SMS_BUDGET:
        return PageFormat("sms", min(body_maxlen, SMS_BUDGET), 0, "text")
    budget = SCHEME_BUDGETS.get(scheme, CHAT_BUDGET)
    if body_maxlen > 0:
        budget = min(budget, body_maxlen)
    if title_maxlen > 0:
        return PageFormat("apprise", budget, min(title_maxlen, DEFAULT_TITLE_BUDGET), "markdown")
    title_budget = min(MERGED_TITLE_BUDGET, budget // 4)
    return PageFormat("apprise", budget - title_budget - 2, title_budget, "markdown")


def page_format_for(url: str, label: str) -> PageFormat:
    """The page format of an Apprise URL; DeliveryError when Apprise does not accept the URL."""
    plugin = _plugin(url, label)
    scheme = url.partition("://")[0].lower()
    return apprise_format(scheme, int(plugin.body_maxlen), int(plugin.title_maxlen))


def _plugin(url: str, label: str) -> Any:
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise DeliveryError(
            f"{label}: Apprise does not accept this URL",
            retryable=False,
            reason=FailureReason.BAD_URL,
        )
    return plugin


class AppriseChannel:
    kind = "apprise"

    def __init__(self, renderer: Renderer, *, timeout: float = NOTIFY_TIMEOUT) -> None:
        self._renderer = renderer
        self._timeout = timeout
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))

    async def send(self, delivery: Delivery) -> Sent:
        label = delivery.target.label
        url = delivery.target.target
        plugin = _plugin(url, label)
        scheme = url.partition("://")[0].lower()
        fmt = apprise_format(scheme, int(plugin.body_maxlen), int(plugin.title_maxlen))
        page = self._renderer.render(
            fmt, delivery.event, delivery.context, delivery.excerpt, timezone=delivery.timezone
        )
        notifier = apprise.Apprise()
        notifier.add(plugin)
        body_format = (
            apprise.NotifyFormat.MARKDOWN if fmt.style == "markdown" else apprise.NotifyFormat.TEXT
        )
        try:
            sent = await asyncio.wait_for(
                notifier.async_notify(body=page.body, title=page.title, body_format=body_format),
                timeout=self._timeout,
            )
        except TimeoutError:
            raise DeliveryError(
                f"{label}: no answer within {self._timeout:g}s",
                retryable=True,
                reason=FailureReason.TIMEOUT,
            ) from None
        if not sent:
            raise DeliveryError(
                f"{label}: Apprise could not deliver the notification (it does not say why; "
                "see the apprise log lines)",
                retryable=True,
                reason=FailureReason.APPRISE_FAILED,
            )
        return Sent(page.title, page.body)

    async def close(self) -> None:
        return None


def url_problem(url: str) -> str | None:
    """Why Apprise would refuse `url` at the first page, or None when it accepts it.

    Apprise parses the URL here exactly as it does when sending: an unknown scheme, or a known one
    without its required parts (`slack://` with no tokens), is named with the form the scheme
    takes. The URL itself is never in the message: it may hold a token.
    """
    if apprise.Apprise.instantiate(url) is not None:
        return None
    scheme = url.partition("://")[0].lower()
    known = _schemes()
    if scheme not in known:
        close = difflib.get_close_matches(scheme, known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f'Apprise knows no "{scheme}://" service{hint}'
    forms = [form.replace("{schema}", scheme) for form in _templates(scheme)[:2]]
    written = " or ".join(forms) if forms else f"{scheme}://..."
    return f"Apprise does not accept this {scheme}:// URL: it is written {written}"


def _schemes() -> list[str]:
    manager = NotificationManager()  # type: ignore[no-untyped-call]
    return sorted(str(scheme) for scheme in manager.schemas())  # type: ignore[no-untyped-call]


def _templates(scheme: str) -> tuple[str, ...]:
    try:
        plugin = NotificationManager()[scheme]  # type: ignore[no-untyped-call]
    except KeyError:
        return ()
    return tuple(str(form) for form in getattr(plugin, "templates", ()))
