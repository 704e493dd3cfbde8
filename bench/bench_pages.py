"""Page rendering: pages per second per channel kind, with the shipped templates and budgets.

Each page is rendered as the dispatcher does before sending: the template once without the runbook
excerpt to learn the room left, the excerpt cut to it, the template again with it, then the body
fitted to the channel's budget. PagerDuty's figure is the whole Events API event (summary template,
custom details, links), without sending it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from router.outbox.budgets import CHAT_BUDGET, EMAIL_BUDGET, SMS_BUDGET
from router.outbox.channels import Delivery
from router.outbox.channels.pagerduty import PagerDutyChannel
from router.outbox.render import LOG_FORMAT, PageFormat, Renderer
from router.outbox.template_checks import sample_context
from router.rules import ChannelTarget

PAGES = 2_000
_BLOCKS = [
    "**Service › Slow Proof Generation**",
    "**Symptoms**\n\n- proof generation p99 above 10s\n- the prover queue grows",
    "**Immediate Actions**\n\n```sh\nkubectl -n zkp get pods -l app=prover\n```",
    "**Investigation Steps**\n\n" + "Check the proving key cache and GPU memory. " * 40,
]


def _excerpt(budget: int, _style: str) -> str:
    footer = "Runbook: https://git.example.com/ops/runbooks/blob/main/zkp.md#slow"
    chunks, used = [], len(footer)
    for block in _BLOCKS:
        if used + len(block) + 2 > budget:
            break
        chunks.append(block)
        used += len(block) + 2
    return "\n\n".join([*chunks, footer])


def _measure(render: Callable[[], object]) -> tuple[float, float]:
    durations = []
    for _ in range(PAGES):
        started = time.perf_counter()
        render()
        durations.append(time.perf_counter() - started)
    p99 = statistics.quantiles(durations, n=100)[98]
    return PAGES / sum(durations), p99 * 1000


def main() -> None:
    renderer = Renderer()
    context = sample_context("trigger", ack_url="https://router.example.com/ack/" + "x" * 80)
    formats = {
        "apprise (chat, 3,500)": PageFormat("apprise", CHAT_BUDGET, 250, "markdown"),
        "apprise (email, 20,000)": PageFormat("apprise", EMAIL_BUDGET, 250, "markdown"),
        "sms (160)": PageFormat("sms", SMS_BUDGET, 0, "text"),
        "log": LOG_FORMAT,
    }
    for name, fmt in formats.items():
        rate, p99 = _measure(lambda fmt=fmt: renderer.render(fmt, "trigger", context, _excerpt))
        print(f"  {name:<26} {rate:>8,.0f} pages/s   p99 {p99:.2f} ms")
    channel = PagerDutyChannel("http://pagerduty.invalid", renderer)
    target = ChannelTarget("pagerduty", "BENCHKEY", "pagerduty")
    delivery = Delivery(1, "trigger", "oncall", target, context, _excerpt)
    rate, p99 = _measure(lambda: channel.trigger_event(delivery))
    print(f"  {'pagerduty (event)':<26} {rate:>8,.0f} pages/s   p99 {p99:.2f} ms")
