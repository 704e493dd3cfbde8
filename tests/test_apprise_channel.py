"""The Apprise channel against real servers: email to an SMTP server, JSON to a loopback receiver."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from router.errors import DeliveryError
from router.outbox.budgets import CHAT_BUDGET, EMAIL_BUDGET
from router.outbox.channels.apprise import AppriseChannel, apprise_format
from router.outbox.render import (
    Renderer,
)
from router.rules import ChannelTarget

from .fakes import Receiver, SmtpServer, text_of
from .pages import ACK_URL, RUNBOOK_LINK, delivery


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    server = Receiver()
    url = await server.start()
    yield server, url
    await server.close()


def apprise_target(url: str) -> ChannelTarget:
    return ChannelTarget("apprise", url, f"apprise:{url.partition('://')[0]}")


def json_url(base: str, path: str = "/hook") -> str:
    return base.replace("http://", "json://") + path


async def test_email_carries_the_runbook_and_the_ack_link(smtp: SmtpServer) -> None:
    channel = AppriseChannel(Renderer())
    await channel.send(delivery("trigger", apprise_target(smtp.mailto())))

    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "oncall@example.com"
    assert message["Subject"] == "[P1] TRIGGERED: ProofGenerationSlow: proof generation takes 14s"
    text = text_of(message)
    assert ACK_URL in text
    assert "kubectl -n zkp get pods -l app=prover" in text
    assert "proof generation p99 above 10s" in text
    assert RUNBOOK_LINK in text


async def test_resolution_is_emailed_too(smtp: SmtpServer) -> None:
    channel = AppriseChannel(Renderer())
    await channel.send(delivery("resolve", apprise_target(smtp.mailto()), by="alertmanager"))

    message = smtp.messages[0]
    assert message["Subject"] == "[P1] RESOLVED: ProofGenerationSlow: proof generation takes 14s"
    assert "Resolved by alertmanager. No action needed." in text_of(message)


async def test_json_webhook_gets_title_and_markdown_body(
    receiver: tuple[Receiver, str],
) -> None:
    server, base = receiver
    channel = AppriseChannel(Renderer())
    await channel.send(delivery("escalate", apprise_target(json_url(base))))

    assert [r.path for r in server.requests] == ["/hook"]
    body = server.requests[0].json()
    assert body["title"] == "[P1] ESCALATED: ProofGenerationSlow: proof generation takes 14s"
    message = body["message"]
    assert message.startswith("**P1 ESCALATED** · ProofGenerationSlow: proof generation takes 14s")
    assert f"**Acknowledge:** {ACK_URL}" in message
    assert "now paging oncall (step 2)" in message
    assert "```sh\n   kubectl -n zkp get pods -l app=prover" in message
    assert message.endswith("Incident 12: https://router.example.com/api/v1/incidents/12")


async def test_failed_notification_is_retryable_and_the_url_is_never_logged(
    receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, base = receiver
    server.answer(500)
    secret = "s3cr3t-t0ken"
    url = json_url(base, f"/hook/{secret}").replace("json://", f"json://user:{secret}@")
    channel = AppriseChannel(Renderer())

    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", apprise_target(url)))

    assert len(server.requests) == 1
    assert raised.value.retryable
    assert raised.value.reason == "apprise_failed"
    assert str(raised.value).startswith("apprise:json: Apprise could not deliver")
    assert secret not in str(raised.value)
    # Every line but the fake server's own access log.
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp")]
    assert logged, "the failure is logged"
    assert not [line for line in logged if secret in line]


async def test_url_apprise_does_not_know_fails_for_good() -> None:
    channel = AppriseChannel(Renderer())
    with pytest.raises(DeliveryError) as raised:
        await channel.send(delivery("trigger", apprise_target("nosuchservice://token@host")))
    assert not raised.value.retryable
    assert raised.value.reason == "bad_url"
    assert str(raised.value) == "apprise:nosuchservice: Apprise does not accept this URL"


@pytest.mark.parametrize(
    ("scheme", "body_maxlen", "title_maxlen", "template", "body_budget", "title_budget"),
    [
        ("mailto", 32768, 250, "apprise", EMAIL_BUDGET, 250),
        ("slack", 35000, 250, "apprise", CHAT_BUDGET, 250),
        ("discord", 2000, 256, "apprise", 2000, 250),
        # Telegram takes no separate title: Apprise puts it in the body, so the body leaves room.
        ("tgram", 4096, 0, "apprise", CHAT_BUDGET - 200 - 2, 200),
        ("twilio", 160, 0, "sms", 160, 0),
        ("plivo", 140, 0, "sms", 140, 0),
        ("sns", 32768, 0, "sms", 160, 0),
    ],
)
def test_format_follows_the_target(
    scheme: str,
    body_maxlen: int,
    title_maxlen: int,
    template: str,
    body_budget: int,
    title_budget: int,
) -> None:
    fmt = apprise_format(scheme, body_maxlen, title_maxlen)
    assert (fmt.template, fmt.body_budget, fmt.title_budget) == (
        template,
        body_budget,
        title_budget,
    )
