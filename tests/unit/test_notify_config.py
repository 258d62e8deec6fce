"""`notify.urls` are checked by apprise when the config loads, and never echoed back."""

from __future__ import annotations

import pytest

from crm_sync.config import parse_config
from crm_sync.errors import ConfigError

TOKEN = "xoxb-secret-4242"


def test_unusable_apprise_urls_are_a_config_error_that_hides_them() -> None:
    raw = {
        "enrichment": {"api_key": "k-0123456789"},
        "notify": {"urls": ["${A}", "${B}", "${C}"]},
    }
    env = {"A": f"slak://{TOKEN}/x/y", "B": "json://127.0.0.1:9/ok", "C": TOKEN}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env=env)
    message = str(caught.value)
    assert "notify.urls: entry 0 apprise cannot use this slak:// URL" in message
    assert "entry 2 is not an apprise URL" in message
    assert "entry 1" not in message
    assert TOKEN not in message


def test_usable_urls_load_and_stay_secret() -> None:
    raw = {"enrichment": {"api_key": "k-0123456789"}, "notify": {"urls": ["${A}"]}}
    config = parse_config(raw, env={"A": f"json://u:{TOKEN}@127.0.0.1:9/x"})
    assert TOKEN not in repr(config)
    assert config.notify.events == ("failed", "in_doubt", "low_balance", "budget_reached")
