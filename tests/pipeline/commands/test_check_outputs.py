"""`crm-sync check` shows the notification URLs (never their values) and asks the Pushgateway."""

from __future__ import annotations

import socket

from crm_sync.commands.check_outputs import check_outputs
from crm_sync.config import parse_config
from crm_sync.exit_codes import EXIT_OK, EXIT_TRANSIENT
from tests.pipeline.commands.recorder import Recorder

TOKEN = "hook-token-5150"


def _config(gateway: str | None) -> object:
    raw = {
        "enrichment": {"api_key": "k-0123456789"},
        "notify": {"urls": ["${A}", "${B}"]},
        "metrics": {"pushgateway_url": gateway, "push_timeout_seconds": 2},
    }
    env = {
        "A": f"json://u:{TOKEN}@127.0.0.1:9/x",
        "B": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
    }
    return parse_config(raw, env=env)


def test_check_lists_notify_targets_and_finds_the_gateway_ready() -> None:
    with Recorder() as gateway:
        lines = check_outputs(_config(gateway.url))  # type: ignore[arg-type]
        (asked,) = gateway.wait_for(1)
    notify, push = lines
    assert notify.render() == (
        "notify: OK [0] json, [1] slack; events: failed, in_doubt, low_balance, "
        "budget_reached (nothing sent)"
    )
    assert (asked.method, asked.path) == ("GET", "/-/ready")
    assert push.ok
    assert push.exit_code == EXIT_OK
    assert all(TOKEN not in line.render() for line in lines)


def test_an_unreachable_gateway_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, push = check_outputs(_config(f"http://127.0.0.1:{port}"))  # type: ignore[arg-type]
    assert not push.ok
    assert push.exit_code == EXIT_TRANSIENT
    assert f"http://127.0.0.1:{port} unreachable" in push.message
    assert "metrics.pushgateway_url" in push.message
