"""`crm-sync check` for what a run reports to: notification URLs and the Pushgateway.

Notification URLs are shown by position and scheme only (they hold tokens), and no message is
sent: a check must not page anyone. The Pushgateway is asked whether it is ready
(`GET /-/ready`), within `metrics.push_timeout_seconds`.
"""

from __future__ import annotations

import httpx

from crm_sync.commands.check_line import CheckLine
from crm_sync.config import Config
from crm_sync.exit_codes import EXIT_TRANSIENT
from crm_sync.outputs.pushgateway import safe_url


def check_outputs(config: Config) -> list[CheckLine]:
    """A `notify` line when URLs are set, a `pushgateway` line when a URL is set."""
    lines: list[CheckLine] = []
    urls = [u.get_secret_value() for u in config.notify.urls]
    if urls:
        schemes = ", ".join(f"[{i}] {u.split('://', 1)[0]}" for i, u in enumerate(urls))
        events = ", ".join(config.notify.events)
        lines.append(CheckLine("notify", True, f"{schemes}; events: {events} (nothing sent)"))
    gateway = config.metrics.pushgateway_url
    if gateway:
        lines.append(_check_gateway(gateway, config.metrics.push_timeout_seconds))
    return lines


def _check_gateway(url: str, timeout: float) -> CheckLine:
    shown = safe_url(url)
    try:
        with httpx.Client(timeout=timeout) as client:
            answer = client.get(url.rstrip("/") + "/-/ready")
    except httpx.HTTPError as exc:
        return CheckLine(
            "pushgateway",
            False,
            f"{shown} unreachable ({type(exc).__name__}): fix metrics.pushgateway_url or start it",
            EXIT_TRANSIENT,
        )
    if answer.status_code != 200:
        return CheckLine(
            "pushgateway",
            False,
            f"{shown} answered {answer.status_code} to GET /-/ready; fix metrics.pushgateway_url",
            EXIT_TRANSIENT,
        )
    return CheckLine("pushgateway", True, f"{shown} ready")
