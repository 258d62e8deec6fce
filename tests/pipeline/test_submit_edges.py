"""The submit stage at its edges, over real sockets against the (strict) emulators.

Refused items, refusals before any work, stop requests and rate-limiter waits: in every case a
contact is either sent once, or released with no cooldown, or (alone) marked `invalid_input`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.config import Config
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.records import Batch
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batches
from crm_sync.store.store import Store
from tests.pipeline.conftest import context, make_config
from tests.support.dialects import both_api_versions  # noqa: F401 - runs every test in v1 and v2

MISSING_EMAIL = {"email": None, "phone": "+1 212 555 0100"}


@pytest.fixture
def world(api_version: str) -> Iterator[SandboxWorld]:
    """120 HubSpot contacts (no Salesforce), a strict enrichment emulator, fast jobs, spoken
    to in each API version."""
    options = WorldOptions(
        hubspot_contacts=120,
        salesforce_contacts=0,
        completion_delay=0.05,
        rate_limit_calls=5000,
        api_version=api_version,
    )
    with SandboxWorld(options) as started:
        assert started.enrichment.strict_input
        yield started


def _config(
    world: SandboxWorld, tmp_path: Path, run: dict[str, Any] | None = None, **enrichment: Any
) -> Config:
    """The HubSpot source alone; `enrichment` keys override the world's enrichment section."""
    sections: dict[str, Any] = {
        "sources": [world.hubspot_source()],
        "enrichment": {**world.enrichment_section(), **enrichment},
    }
    if run is not None:
        sections["run"] = run
    return make_config(world, tmp_path, **sections)


def _posts(world: SandboxWorld, status: int | None = None) -> int:
    """Bulk POSTs the emulator answered (with `status`, if given)."""
    return sum(
        1
        for call in world.enrichment.calls
        if call.method == "POST" and (status is None or call.status == status)
    )


class _OnEvent:
    """A progress sink that runs `action` the first time `stage` advances (a test hook)."""

    def __init__(self, stage: str, action: Any) -> None:
        self.stage = stage
        self.action = action
        self.fired = False

    def advance(self, source: str, stage: str, n: int) -> None:
        if stage == self.stage and not self.fired:
            self.fired = True
            self.action()


def _free_without_cooldown(store: Store, record_ids: list[str]) -> None:
    """Each record is out of flight and its cooldown never started (so the next run asks)."""
    assert record_ids
    for rid in record_ids:
        row = store.ledger_row("hubspot", rid)
        assert row is not None, rid
        assert row.in_flight_batch_id is None, rid
        assert row.last_attempt_at is None, (rid, row)
        assert row.outcome != "api_rejected", rid


# -- 1. items the API would refuse ---------------------------------------------------------


def test_refused_items_are_isolated_and_the_rest_sent_in_the_same_run(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Items our table lets through but the API refuses cost nobody else anything."""
    bad_domain = [
        world.hubspot.add_contact(
            firstname="Ada",
            lastname=f"Refused{i}",
            company="Acme",
            website="acme.123",
            **MISSING_EMAIL,
        )
        for i in range(2)
    ]
    linkedin_only = world.hubspot.add_contact(
        firstname="Grace",
        lastname=None,
        company="Initech",
        hs_linkedin_url="https://www.linkedin.com/in/grace-hopper-1",
        **MISSING_EMAIL,
    )
    config = _config(world, tmp_path)
    with context(config) as ctx:
        report = run_cycle(ctx)
        counts = report.source("hubspot").counts
        assert report.exit_code == 0, report.as_dict()
        assert report.source("hubspot").status == "ok"
        for rid in bad_domain:
            row = ctx.store.ledger_row("hubspot", rid)
            assert row is not None
            assert (row.outcome, row.detail) == ("invalid_input", "error.enrichment.domain.invalid")
            assert row.in_flight_batch_id is None
        # Refused in a batch (the API's code), or, once the rules learned, before planning.
        row = ctx.store.ledger_row("hubspot", linkedin_only)
        if row is not None:
            assert row.outcome == "invalid_input"
            assert row.detail in {"error.enrichment.lastname.empty", "missing_last_name"}
        written = ctx.store.batches_by_state()
    submitted = world.enrichment.submissions_per_contact()
    assert not set(bad_domain) & set(submitted)
    assert linkedin_only not in submitted
    assert counts.invalid_input >= 3
    assert counts.rejected_reasons["invalid_input:error.enrichment.domain.invalid"] == 2
    assert counts.submitted == len(submitted) > 50
    assert max(submitted.values()) == 1
    assert set(written) <= {"written", "failed"}, written


def test_the_stricter_rule_is_remembered_by_the_next_run(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """One refused POST teaches the rule; the next run (a new process's rules) pays none."""
    config = _config(world, tmp_path)
    world.hubspot.add_contact(
        firstname="Ada",
        lastname=None,
        company="Acme",
        hs_linkedin_url="https://www.linkedin.com/in/ada-lovelace-3",
        **MISSING_EMAIL,
    )
    with context(config) as ctx:
        run_cycle(ctx)
    assert _posts(world, 400) == 1  # the LinkedIn-only contact taught the rule, once
    rid = world.hubspot.add_contact(
        firstname="Grace",
        lastname=None,
        company="Initech",
        hs_linkedin_url="https://www.linkedin.com/in/grace-hopper-3",
        **MISSING_EMAIL,
    )
    with context(config) as ctx:
        assert ctx.rules.linkedin_alone  # a fresh process starts from the documented table
        report = run_cycle(ctx)
    counts = report.source("hubspot").counts
    assert _posts(world, 400) == 1
    assert counts.rejected_reasons["invalid_input:missing_last_name"] >= 1
    assert rid not in world.enrichment.submissions_per_contact()


@pytest.mark.parametrize("api_version", ["v1"])  # DeepEnrich speaks v1 only
def test_deepenrich_linkedin_only_contact_never_reaches_the_api(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """DeepEnrich always needs names and company: the item is refused here, not by a 400."""
    rid = world.hubspot.add_contact(
        firstname="Grace",
        lastname=None,
        company="Initech",
        hs_linkedin_url="https://www.linkedin.com/in/grace-hopper-2",
        **MISSING_EMAIL,
    )
    config = _config(world, tmp_path, provider="deepenrich")
    with context(config) as ctx:
        report = run_cycle(ctx)
    counts = report.source("hubspot").counts
    assert report.exit_code == 0, report.as_dict()
    assert _posts(world, 400) == 0
    assert rid not in world.enrichment.submissions_per_contact()
    assert counts.invalid_input >= 1
    assert counts.rejected_reasons["invalid_input:missing_last_name"] >= 1
    assert counts.submitted > 50


@pytest.mark.parametrize("api_version", ["v1"])  # DeepEnrich speaks v1 only
def test_a_refusal_of_the_whole_request_blames_no_contact(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """A 400 about the request itself (its webhook URL) is not split: one POST, no culprit."""
    config = _config(world, tmp_path, provider="deepenrich")
    with context(config) as ctx:
        ctx.webhook_url = "ftp://not-a-webhook"  # the API refuses it for the whole POST
        report = run_cycle(ctx, wait=False)
        source = report.source("hubspot")
        assert source.status == "failed", report.as_dict()
        assert "as a whole (error.enrichment.webhook_url.invalid)" in source.message
        batch = ctx.store.get_batch(_only_batch_id(ctx.store))
        assert batch is not None
        _free_without_cooldown(ctx.store, [c.record_id for c in batch.contacts])
    assert _posts(world) == _posts(world, 400) == 1
    assert not [r for r in source.counts.rejected_reasons if r.startswith("invalid_input:error.")]


# -- 2. refused before any work: released, no cooldown ---------------------------------------


@pytest.mark.parametrize("fault", ["503", "connection_refused", "429"])
def test_a_batch_refused_before_any_work_is_released_without_cooldown(
    world: SandboxWorld, tmp_path: Path, fault: str
) -> None:
    """503, a refused connection or a 429 after every retry: nothing was sent, nothing held."""
    emulator = world.enrichment

    def break_the_api() -> None:  # after the credits call, before the first POST
        if fault == "503":
            emulator.faults.statuses = (503,)
            emulator.faults.error_rate = 1.0
        elif fault == "429":
            emulator.rate_limit_calls = 1
            emulator.rate_limit_window = 30.0
        else:
            world.servers["enrichment"].stop()

    config = _config(world, tmp_path, max_retries=1, rate_limit_window_seconds=0.2)
    with context(config, progress=_OnEvent("scanned", break_the_api)) as ctx:
        report = run_cycle(ctx, wait=False)
        source = report.source("hubspot")
        assert source.status == "failed", report.as_dict()
        assert "nothing sent" in source.message
        assert ctx.store.batches_by_state() == {"failed": 1}
        batch = ctx.store.get_batch(_only_batch_id(ctx.store))
        assert batch is not None
        assert (batch.error or "").startswith("not sent")
        _free_without_cooldown(ctx.store, [c.record_id for c in batch.contacts])
    assert emulator.submissions_per_contact() == {}


def test_contacts_of_a_batch_refused_before_work_are_sent_by_the_next_run(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The next run (API back) sends them: a 503 did not cost them 30 days."""
    emulator = world.enrichment

    def fail() -> None:
        emulator.faults.statuses = (503,)
        emulator.faults.error_rate = 1.0

    config = _config(world, tmp_path, max_retries=0)
    with context(config, progress=_OnEvent("scanned", fail)) as ctx:
        run_cycle(ctx, wait=False)
    emulator.faults.error_rate = 0.0
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert report.exit_code == 0, report.as_dict()
    assert report.source("hubspot").counts.submitted > 50
    assert max(emulator.submissions_per_contact().values()) == 1


def _only_batch_id(store: Store) -> str:
    batches = _all_batches(store)
    assert len(batches) == 1, batches
    return str(batches[0].id)


# -- 2b/3. stop requests ---------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v1"])  # DeepEnrich speaks v1 only
def test_stop_while_waiting_for_a_limiter_slot_leaves_nothing_sending(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The wait ends at once on a stop; the waiting batch was never `sending`; no cooldown."""
    # Two calls per 30 s: the credits GET and the first POST; the second POST must wait.
    # DeepEnrich's rules: no LinkedIn-only item reaches the strict API, so no refused POST.
    config = _config(
        world,
        tmp_path,
        run={"batch_size": 10, "poll_initial_seconds": 0.2},
        provider="deepenrich",
        rate_limit_per_minute=2,
        rate_limit_window_seconds=30,
    )
    with context(config) as ctx:
        timer = threading.Timer(0.5, ctx.stopping.set)
        ctx.progress = _OnEvent("submitted", timer.start)
        started = time.monotonic()
        report = run_cycle(ctx, wait=False)
        elapsed = time.monotonic() - started
        timer.cancel()
        states = ctx.store.batches_by_state()
        waiting = [b for b in _all_batches(ctx.store) if b.state == "failed"]
        assert len(waiting) == 1, states
        assert waiting[0].error == "not sent: stop requested before the POST left"
        _free_without_cooldown(ctx.store, [c.record_id for c in waiting[0].contacts])
    assert elapsed < 10, elapsed
    assert _posts(world) == 1
    assert "sending" not in states, states
    assert "in_doubt" not in states, states
    assert report.source("hubspot").counts.in_doubt == 0


@pytest.mark.parametrize("api_version", ["v1"])  # DeepEnrich speaks v1 only
def test_no_new_batch_after_a_stop_request(world: SandboxWorld, tmp_path: Path) -> None:
    """The stop flag is read before every batch, not once per page of candidates."""
    config = _config(
        world, tmp_path, run={"batch_size": 10, "poll_initial_seconds": 0.2}, provider="deepenrich"
    )
    with context(config) as ctx:
        ctx.progress = _OnEvent("submitted", ctx.stopping.set)
        report = run_cycle(ctx, wait=False)
        states = ctx.store.batches_by_state()
    assert _posts(world) == 1
    assert report.source("hubspot").counts.submitted == 10
    assert "stopped on request" in report.source("hubspot").message
    assert "planned" not in states, states
    assert "sending" not in states, states


def _all_batches(store: Store) -> list[Batch]:
    """Every batch with its contacts (through the store's own reader)."""
    found: list[Batch] = store._read(lambda c, _now: load_batches(c, batches.c.id.is_not(None)))
    return found
