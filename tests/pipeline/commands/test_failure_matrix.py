"""Broken configs and infrastructure faults, each run as a user would: a real `crm-sync` process.

Every case asserts: no traceback on stderr, the documented exit code (crm_sync/exit_codes.py),
and a message naming the key, URL or path to look at.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_sync.exit_codes import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_TRANSIENT,
)
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.pipeline.commands.conftest import assert_clean_failure, cli, write_config

FAST_RETRIES = {"max_retries": 1, "backoff_cap_seconds": 0.05}


@pytest.fixture
def small_world() -> Iterator[SandboxWorld]:
    options = WorldOptions(hubspot_contacts=30, salesforce_contacts=30, completion_delay=0.05)
    with SandboxWorld(options) as started:
        yield started


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


Prepare = Callable[[SandboxWorld, Path, dict[str, Any]], list[str]]


@dataclass
class Case:
    """One broken thing: how to break it, the command, the code and what the message names."""

    prepare: Prepare
    code: int
    names: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def _config(world: SandboxWorld, tmp_path: Path, **sections: Any) -> dict[str, Any]:
    config = world.config_dict(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    config["enrichment"].update(FAST_RETRIES)
    config.update(sections)
    return config


def _once(tmp_path: Path, config: dict[str, Any]) -> list[str]:
    return ["--once", "--config", write_config(tmp_path, config)]


def _set(section: str, **values: Any) -> Prepare:
    def prepare(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        config[section] = {**config.get(section, {}), **values}
        return _once(tmp_path, config)

    return prepare


def _missing_file(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    return ["--once", "--config", str(tmp_path / "nowhere" / "config.yaml")]


def _bad_yaml(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text("enrichment:\n  api_key: [unclosed\n")
    return ["--once", "--config", str(path)]


def _unset_variable(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["enrichment"]["api_key"] = "${CRM_SYNC_TEST_UNSET_KEY}"
    return _once(tmp_path, config)


def _unknown_key(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["run"]["poll_every"] = 3
    return _once(tmp_path, config)


def _no_sources(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["sources"] = []
    return _once(tmp_path, config)


def _all_disabled_daemon(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["sources"] = [{**s, "enabled": False} for s in config["sources"]]
    return ["run", "--config", write_config(tmp_path, config)]


def _sqlite_missing_dir(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["state"] = {"url": f"sqlite:///{tmp_path / 'missing-dir' / 'state.sqlite3'}"}
    return _once(tmp_path, config)


def _sqlite_status_missing_dir(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    return ["status", "--state-url", f"sqlite:///{tmp_path / 'missing-dir' / 'state.sqlite3'}"]


def _pg_closed_port(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["state"] = {"url": f"postgresql://postgres@127.0.0.1:{_closed_port()}/crm"}
    return _once(tmp_path, config)


def _pg_missing_database(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["state"] = {"url": "postgresql://postgres@127.0.0.1:5432/crm_sync_no_such_db"}
    return _once(tmp_path, config)


def _enrichment_closed_port(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    config["enrichment"]["base_url"] = f"http://127.0.0.1:{_closed_port()}/api/v1"
    return _once(tmp_path, config)


def _enrichment_404(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["enrichment"]["base_url"] = f"{world.enrichment_url}/wrong-prefix"
    return _once(tmp_path, config)


def _enrichment_key_refused(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    config["enrichment"]["api_key"] = "not-the-key"
    return _once(tmp_path, config)


def _hubspot_token_refused(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    source = world.hubspot_source()
    source["settings"]["access_token"] = "pat-wrong"
    config["sources"] = [source]
    return _once(tmp_path, config)


def _salesforce_bad_filter(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    config["sources"] = [world.salesforce_source(filters="No_Such_Field__c = 'x'")]
    return _once(tmp_path, config)


def _salesforce_daily_limit(
    world: SandboxWorld, tmp_path: Path, config: dict[str, Any]
) -> list[str]:
    world.salesforce.daily_limit = 0
    config["sources"] = [world.salesforce_source()]
    return _once(tmp_path, config)


def _hubspot_closed_port(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    source = world.hubspot_source()
    source["settings"].update(base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    config["sources"] = [source]
    return _once(tmp_path, config)


def _check_bad_cron(world: SandboxWorld, tmp_path: Path, config: dict[str, Any]) -> list[str]:
    config["schedule"] = {"cron": "61 * * * *"}
    return ["check", "--config", write_config(tmp_path, config)]


CASES: dict[str, Case] = {
    "config file missing": Case(_missing_file, EXIT_CONFIG, ("config.yaml", "not found")),
    "config not YAML": Case(_bad_yaml, EXIT_CONFIG, ("config.yaml", "line 3")),
    "variable not set": Case(
        _unset_variable, EXIT_CONFIG, ("enrichment.api_key", "CRM_SYNC_TEST_UNSET_KEY")
    ),
    "unknown key": Case(_unknown_key, EXIT_CONFIG, ("run.poll_every",)),
    "cron in words": Case(
        _set("schedule", cron="every 15 minutes"), EXIT_CONFIG, ("schedule.cron",)
    ),
    "cron 6 fields": Case(_set("schedule", cron="0 */15 * * * *"), EXIT_CONFIG, ("schedule.cron",)),
    "cron minute 61 (check)": Case(_check_bad_cron, EXIT_CONFIG, ("schedule.cron", "61")),
    "no sources": Case(_no_sources, EXIT_CONFIG, ("sources",)),
    "all sources disabled (run)": Case(_all_disabled_daemon, EXIT_CONFIG, ("sources", "disabled")),
    "sqlite directory missing": Case(
        _sqlite_missing_dir, EXIT_CONFIG, ("state.url", "missing-dir")
    ),
    "sqlite directory missing (status)": Case(
        _sqlite_status_missing_dir, EXIT_CONFIG, ("--state-url", "missing-dir")
    ),
    "postgres unreachable": Case(_pg_closed_port, EXIT_TRANSIENT, ("state.url", "127.0.0.1:")),
    "postgres database missing": Case(
        _pg_missing_database, EXIT_CONFIG, ("state.url", "crm_sync_no_such_db")
    ),
    "enrichment closed port": Case(
        _enrichment_closed_port, EXIT_TRANSIENT, ("http://127.0.0.1:", "credit check")
    ),
    "enrichment answers 404": Case(_enrichment_404, EXIT_CONFIG, ("enrichment.base_url", "404")),
    "enrichment key refused": Case(_enrichment_key_refused, EXIT_AUTH, ("enrichment.api_key",)),
    "hubspot token refused": Case(_hubspot_token_refused, EXIT_AUTH, ("hubspot",)),
    "salesforce bad filter": Case(_salesforce_bad_filter, EXIT_FAILED, ("salesforce",)),
    "salesforce daily limit": Case(_salesforce_daily_limit, EXIT_FAILED, ("salesforce", "daily")),
    "hubspot unreachable": Case(_hubspot_closed_port, EXIT_TRANSIENT, ("hubspot", "unreachable")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_thing_ends_in_a_clean_message(
    name: str, small_world: SandboxWorld, tmp_path: Path, pg_available: bool
) -> None:
    """No traceback, the documented exit code, and the key, URL or path named."""
    case = CASES[name]
    if name.startswith("postgres") and not pg_available:
        pytest.skip("PostgreSQL not reachable")
    args = case.prepare(small_world, tmp_path, _config(small_world, tmp_path))
    result = cli(*args, env=case.env, timeout=60)
    assert_clean_failure(result, case.code, *case.names)


def test_hung_database_times_out_as_transient(
    small_world: SandboxWorld, tmp_path: Path, silent_server: int
) -> None:
    """A server that accepts and never answers: exit 5 after the connect timeout, naming it."""
    config = _config(small_world, tmp_path)
    config["state"] = {
        "url": f"postgresql://postgres@127.0.0.1:{silent_server}/crm",
        **_connect_timeout(),
    }
    result = cli("--once", "--config", write_config(tmp_path, config), timeout=60)
    assert_clean_failure(result, EXIT_TRANSIENT, "state.url", f"127.0.0.1:{silent_server}")
    assert "did not answer in time" in result.stderr


def test_enrichment_that_never_answers_is_transient(
    small_world: SandboxWorld, tmp_path: Path, silent_server: int
) -> None:
    """An enrichment URL that accepts and never answers: exit 5 after the timeout, naming it."""
    config = _config(small_world, tmp_path)
    url = f"http://127.0.0.1:{silent_server}/api/v1"
    config["enrichment"].update(base_url=url, timeout_seconds=0.5, max_retries=0)
    result = cli("--once", "--config", write_config(tmp_path, config), timeout=60)
    assert_clean_failure(result, EXIT_TRANSIENT, url, "credit check")


def _connect_timeout() -> dict[str, Any]:
    """The shortest connect timeout, where the config has the key (ops-deploy adds it)."""
    from crm_sync.config import StateConfig

    if "connect_timeout_seconds" in StateConfig.model_fields:
        return {"connect_timeout_seconds": 2}
    return {}


@pytest.mark.parametrize("fault", ["rate_limited", "unavailable"])
def test_api_down_at_credit_check_leaves_no_run_running(fault: str, tmp_path: Path) -> None:
    """429 or 503 at the credit check: exit 5 naming the URL, and the run is recorded ended."""
    options = WorldOptions(
        hubspot_contacts=20, salesforce_contacts=0, completion_delay=0.05, rate_limit_calls=1
    )
    with SandboxWorld(options) as world:
        config = _config(world, tmp_path, sources=[world.hubspot_source()])
        config["enrichment"]["rate_limit_per_minute"] = 1000
        # 429 retries span one rate window of the client's: a short one keeps the test short,
        # while the emulator's own 60 s window stays full for the whole run.
        config["enrichment"]["rate_limit_window_seconds"] = 2.0
        if fault == "rate_limited":
            key = {"Authorization": f"Bearer {world.enrichment.api_key}"}
            httpx.get(f"{world.enrichment_url}/account/credits", headers=key)  # spends the window
        else:
            world.enrichment.faults.statuses = (503,)
            world.enrichment.faults.error_rate = 1.0
        result = cli(*_once(tmp_path, config), timeout=60)
    assert_clean_failure(result, EXIT_TRANSIENT, world.enrichment_url, "credit check")
    store = Store.open(config["state"]["url"])
    try:
        runs = store.run_history(5)
    finally:
        store.close()
    assert [r.status for r in runs] == ["transient"]
    assert runs[0].finished_at is not None
    assert runs[0].report
    assert "credit check" in runs[0].report["reason"]


def test_check_covers_store_and_schedule_and_allows_no_sources(
    small_world: SandboxWorld, tmp_path: Path
) -> None:
    """`check` with no source: the store, the schedule and the enrichment API; exit 0."""
    config = _config(small_world, tmp_path, sources=[], schedule={"cron": "*/15 * * * *"})
    result = cli("check", "--config", write_config(tmp_path, config))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("state store: OK sqlite")
    assert "new store" in lines[0]
    assert lines[1].startswith("schedule: OK cron '*/15 * * * *', next at ")
    assert lines[2].startswith("enrichment: OK")


def test_check_names_an_unreachable_store(
    small_world: SandboxWorld, tmp_path: Path, pg_available: bool
) -> None:
    """A state store that cannot be reached is a FAILED line naming state.url, exit 5."""
    config = _config(small_world, tmp_path)
    config["state"] = {"url": f"postgresql://postgres@127.0.0.1:{_closed_port()}/crm"}
    result = cli("check", "--config", write_config(tmp_path, config))
    assert result.returncode == EXIT_TRANSIENT, result.stdout + result.stderr
    assert result.stdout.startswith("state store: FAILED state.url:")
    assert "Traceback" not in result.stderr
