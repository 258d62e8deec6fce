"""Every CRM auth flow through a whole `--once` cycle against the emulators over sockets:
sessions that expire mid-run are renewed with no write lost or doubled, and refused credentials
exit 3 with a message that says what to do."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from crm_sync.cli import main
from crm_sync.errors import RunFailed
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.salesforce.keys import generate_key_pair
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.pipeline.conftest import context, make_config
from tests.support.clock import FakeClock


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def small_world(**salesforce_kwargs: Any) -> SandboxWorld:
    options = WorldOptions(
        hubspot_contacts=40,
        salesforce_contacts=40,
        completion_delay=0.02,
        rate_limit_calls=1000,
        salesforce_kwargs=salesforce_kwargs,
    )
    return SandboxWorld(options)


class TickingClock(FakeClock):
    """An org clock one second further on at each reading: a session lives about one request."""

    def now(self) -> datetime:
        return self.advance(seconds=1)


def salesforce_writes(world: SandboxWorld) -> dict[str, dict[str, Any]]:
    """Every record the cycle wrote, with its fields; fails if one was written twice."""
    counts = collections.Counter(w.record_id for w in world.salesforce.writes)
    assert max(counts.values()) == 1, counts.most_common(3)
    return {w.record_id: w.fields for w in world.salesforce.writes}


def run_once(world: SandboxWorld, tmp_path: Path, source: dict[str, Any]) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = make_config(world, tmp_path, sources=[source])
    with context(config) as ctx:
        return run_cycle(ctx)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What a cycle writes into a fresh org when its session never expires."""
    with small_world() as world:
        report = run_once(world, tmp_path_factory.mktemp("base"), world.salesforce_source())
        assert report.exit_code == 0, report.as_dict()
        writes = salesforce_writes(world)
    assert writes
    return writes


@pytest.mark.parametrize("flow", ["jwt", "client_credentials", "password", "session"])
def test_each_salesforce_flow_completes_a_cycle(
    flow: str, tmp_path: Path, baseline: dict[str, dict[str, Any]]
) -> None:
    """Each flow logs in (or uses its session) and writes what the session run writes."""
    with small_world() as world:
        report = run_once(world, tmp_path, world.salesforce_source(auth=flow))
        assert report.exit_code == 0, report.as_dict()
        assert salesforce_writes(world) == baseline
        logins = world.salesforce.calls["token"] + world.salesforce.calls["login"]
        assert logins == (0 if flow == "session" else 1)


def test_session_expiring_right_before_a_write_is_renewed(
    tmp_path: Path, baseline: dict[str, dict[str, Any]]
) -> None:
    """JWT: every session dies as the first write arrives; renewed, and every write lands once."""
    with small_world() as world:
        world.salesforce.expire_sessions_at("/composite/sobjects")
        report = run_once(world, tmp_path, world.salesforce_source(auth="jwt"))
        assert report.exit_code == 0, report.as_dict()
        assert salesforce_writes(world) == baseline
        assert world.salesforce.calls["token"] == 2


def test_sessions_with_a_short_life_are_renewed_all_run_long(
    tmp_path: Path, baseline: dict[str, dict[str, Any]]
) -> None:
    """Client credentials with sessions living 2 org-clock ticks (about one request each)."""
    clock = TickingClock(datetime.fromtimestamp(1_800_000_000 - 1, UTC))
    with small_world(session_ttl=2, clock=clock) as world:
        report = run_once(world, tmp_path, world.salesforce_source(auth="client_credentials"))
        assert report.exit_code == 0, report.as_dict()
        assert salesforce_writes(world) == baseline
        assert world.salesforce.calls["token"] >= 3


def test_session_mode_stops_when_the_session_expires(tmp_path: Path) -> None:
    """A given session that dies before the write: exit 3 saying why; the paid results stay
    `received` for the next run, nothing is written twice."""
    with small_world() as world:
        world.salesforce.expire_sessions_at("/composite/sobjects")
        config = make_config(world, tmp_path, sources=[world.salesforce_source()])
        with context(config) as ctx:
            with pytest.raises(RunFailed) as info:
                run_cycle(ctx)
            assert ctx.store.batches_by_state().get("received", 0) >= 1
        assert info.value.exit_code == 3
        assert "cannot renew it" in str(info.value)
        assert world.salesforce.writes == []
        assert world.salesforce.calls["composite"] == 0


def hubspot_writes(world: SandboxWorld) -> dict[str, dict[str, Any]]:
    counts = collections.Counter(w.record_id for w in world.hubspot.writes)
    assert counts
    assert max(counts.values()) == 1, counts.most_common(3)
    return {w.record_id: dict(w.properties) for w in world.hubspot.writes}


def test_hubspot_oauth_completes_a_cycle_and_renews_its_token(tmp_path: Path) -> None:
    """OAuth: a token at start, and a token expired as the batch update arrives is refreshed;
    the portal gets exactly what a private app run writes."""
    with small_world() as world:
        assert run_once(world, tmp_path / "a", world.hubspot_source()).exit_code == 0
        expected = hubspot_writes(world)
    with small_world() as world:
        world.hubspot.expire_tokens_at("/batch/update")
        report = run_once(world, tmp_path / "b", world.hubspot_source(auth="oauth"))
        assert report.exit_code == 0, report.as_dict()
        assert hubspot_writes(world) == expected
        assert world.hubspot.calls["oauth_token"] == 2


def _cli_once(tmp_path: Path, world: SandboxWorld, source: dict[str, Any]) -> tuple[int, Any]:
    path = tmp_path / "config.yaml"
    state = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    path.write_text(yaml.safe_dump(world.config_dict(state, sources=[source])))
    return main(["--once", "--json", "--config", str(path)]), path


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("wrongly signed assertion", ["invalid_grant", "invalid assertion", "certificate"]),
        ("wrong consumer secret", ["invalid_client", "consumer_secret is wrong"]),
        ("refused refresh token", ["BAD_REFRESH_TOKEN", "reinstall the app"]),
    ],
)
def test_refused_credentials_exit_3_with_a_clear_message(
    case: str, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--once` exits 3; the source's message names the provider's code and the fix."""
    with small_world() as world:
        if case == "wrongly signed assertion":
            source = world.salesforce_source(auth="jwt")
            source["settings"]["private_key"] = generate_key_pair().private_key
        elif case == "wrong consumer secret":
            source = world.salesforce_source(auth="client_credentials")
            source["settings"]["consumer_secret"] = "not-the-secret"
        else:
            source = world.hubspot_source(auth="oauth")
            source["settings"]["refresh_token"] = "na1-revoked-refresh-token"
        code, _ = _cli_once(tmp_path, world, source)
        assert code == 3
        report = json.loads(capsys.readouterr().out)
        message = report["sources"][0]["message"]
        for word in words:
            assert word in message
        assert "not-the-secret" not in message
        assert not world.enrichment.submitted


def test_moving_a_source_from_password_to_jwt_keeps_its_state(tmp_path: Path) -> None:
    """The store keys a source by name, not by flow: after the move nothing is asked again."""
    with small_world() as world:
        first = run_once(world, tmp_path, world.salesforce_source(auth="password"))
        assert first.exit_code == 0
        submitted = len(world.enrichment.submitted)
        assert submitted
        second = run_once(world, tmp_path, world.salesforce_source(auth="jwt"))
        assert second.exit_code == 0
        assert len(world.enrichment.submitted) == submitted
        assert world.salesforce.calls["token"] == 1
