"""A finished batch settles every contact: `not_returned` for a missing item, unknown `custom`
logged and harmless; neither contact is asked (and paid for) again in the next run.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.wiring import open_context
from tests.pipeline.results.conftest import REFUSED, hubspot_config, result_items, sent_ids


def _run_twice(world: SandboxWorld, tmp_path: Path) -> tuple[dict[str, list[str]], list[dict]]:
    """Two runs on one store; (record ids per job of the first run, events of the first run)."""
    config = hubspot_config(world, tmp_path, collect_deadline_seconds=20)
    with open_context(config) as ctx, capture_logs() as events:
        run_cycle(ctx)
        first = sent_ids(world)
        world.enrichment.styles.missing_item = False
        world.enrichment.styles.unknown_custom = False
        run_cycle(ctx)
    return first, events


def test_a_contact_missing_from_a_finished_result_is_not_returned_and_not_asked_again(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The last contact of each job has no item: outcome `not_returned`, not-found cooldown."""
    world.enrichment.styles.missing_item = True
    first, _ = _run_twice(world, tmp_path)
    missing = {ids[-1] for ids in first.values()}
    with open_context(hubspot_config(world, tmp_path)) as ctx:
        rows = {rid: ctx.store.ledger_row("hubspot", rid) for rid in missing}
        states = ctx.store.batches_by_state()
    assert len(missing) >= 2
    for rid, row in rows.items():
        assert row is not None, rid
        assert (row.outcome, row.found, row.in_flight_batch_id) == ("not_returned", False, None)
        assert row.last_attempt_at is not None  # the cooldown runs from this ask
    assert "written" in states
    assert set(states) <= {"written", REFUSED}
    assert max(world.enrichment.submissions_per_contact().values()) == 1


def test_an_item_with_an_unknown_custom_is_logged_and_changes_nothing(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """An item naming no contact we sent is logged; the contact it should have named settles."""
    world.enrichment.styles.unknown_custom = True
    before = {rid: dict(props) for rid, props in world.hubspot.records.items()}
    first, events = _run_twice(world, tmp_path)
    strays = {item["custom"]["crm_id"] for items in result_items(world).values() for item in items}
    strays = {crm_id for crm_id in strays if crm_id.startswith("unknown-")}
    orphaned = {ids[-1] for ids in first.values()}
    logged = {e["crm_id"] for e in events if e["event"] == "result_item_unknown_custom"}
    assert strays
    assert logged == strays
    with open_context(hubspot_config(world, tmp_path)) as ctx:
        for rid in orphaned:
            row = ctx.store.ledger_row("hubspot", rid)
            assert row is not None, rid
            assert row.outcome == "not_returned", rid
    for rid in orphaned:
        assert world.hubspot.records[rid] == before[rid]
    assert max(world.enrichment.submissions_per_contact().values()) == 1
