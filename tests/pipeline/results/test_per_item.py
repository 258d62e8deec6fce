"""Results are read per item: one bad item is `malformed`, the rest of its result is written.

Over real sockets: the enrichment emulator in an answer style, the real httpx client, the
HubSpot emulator through hubspot-api-client, and `run_cycle` polling as `--once` does.
"""

from __future__ import annotations

from pathlib import Path

from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.wiring import open_context
from tests.pipeline.results.conftest import hubspot_config, only, sent_ids
from tests.support.processes import assert_every_found_value_written


def test_a_malformed_item_is_recorded_and_the_others_are_written(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The phone-as-a-number item of each result is `malformed` with its reason; the rest land."""
    world.enrichment.styles.malformed_item = True
    config = hubspot_config(world, tmp_path, collect_deadline_seconds=20)
    with open_context(config) as ctx:
        report = run_cycle(ctx)
        states = ctx.store.batches_by_state()
        sent = sent_ids(world)
        bad = {ids[0] for ids in sent.values()}
        rows = {rid: ctx.store.ledger_row("hubspot", rid) for ids in sent.values() for rid in ids}
    assert len(sent) >= 2
    assert only(states, "written", len(sent)), states
    for rid, row in rows.items():
        assert row is not None
        assert row.in_flight_batch_id is None
        if rid in bad:
            assert row.outcome == "malformed"
            assert "phone" in (row.detail or "")  # v1: most_probable_phone, v2: phones.0.number
        else:
            assert row.outcome != "malformed"
    assert assert_every_found_value_written(world, exclude=bad) > 0
    assert report.source("hubspot").counts.malformed == len(bad)
    assert report.source("hubspot").counts.as_dict()["malformed"] == len(bad)


def test_an_unreadable_result_is_retried_then_failed_with_credits_released(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """A result that cannot be read at all is polled `max_unreadable_results` times, then failed."""
    world.enrichment.styles.unreadable_result = True
    config = hubspot_config(world, tmp_path, collect_deadline_seconds=20, max_unreadable_results=3)
    with open_context(config) as ctx:
        report = run_cycle(ctx)
        states = ctx.store.batches_by_state()
        batches = [ctx.store.batch_by_enrichment_id(job) for job in world.enrichment.job_ids()]
        in_flight = ctx.store.credits_in_flight()
        sample = ctx.store.ledger_row("hubspot", next(iter(sent_ids(world).values()))[0])
    gets = [c for c in world.enrichment.calls if c.method == "GET" and "/bulk/" in c.path]
    assert set(states) == {"failed"}, states
    assert in_flight == 0
    # bounded: three unreadable answers each, plus the odd poll that found the job unfinished
    assert 3 * len(batches) <= len(gets) <= 5 * len(batches)
    for batch in batches:
        assert batch is not None
        assert batch.read_failures == 2  # the third failure ended it
        assert "could not be read after 3 attempts" in (batch.error or "")
        assert "reserved credits released" in (batch.error or "")
    assert sample is not None
    assert (sample.outcome, sample.in_flight_batch_id) == ("malformed", None)
    assert report.source("hubspot").counts.malformed == report.source("hubspot").counts.submitted
