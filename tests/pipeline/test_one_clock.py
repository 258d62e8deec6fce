"""The wiring builds one clock and hands it to the store and the pipeline context alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_sync.pipeline.cycle import source_budget
from crm_sync.store import ContactOutcome, PlannedContact
from crm_sync.wiring import open_context
from tests.daemon.conftest import make_config
from tests.support.clock import FakeClock

SOURCE = {
    "name": "hs",
    "connector": "hubspot",
    "settings": {"access_token": "pat-test", "base_url": "http://127.0.0.1:9"},
    "fields": {"email": "email"},
    "enabled": False,
    "budget": {"per_day": 10},
    "cooldown": {"found_days": 1, "not_found_days": 1},
}


def test_a_day_on_the_one_clock_ends_both_the_cooldown_and_the_budget_day(
    tmp_path: Path,
) -> None:
    """Moving the wired clock by a day frees the contact's cooldown (store) and starts a new
    budget day (context): before, each read a clock of its own."""
    clock = FakeClock(datetime(2025, 3, 1, 23, 0, tzinfo=UTC))
    config = make_config(tmp_path, sources=[SOURCE])
    with open_context(config, clock=clock) as ctx:
        assert ctx.store.clock is ctx.clock is clock
        source = ctx.source_config("hs")
        planned = [PlannedContact("c1", ("contact.emails",), {"custom": {"crm_id": "c1"}})]
        batch = ctx.store.plan_batch(
            source="hs",
            run_id="r1",
            owner=ctx.owner,
            name="b",
            contacts=planned,
            reserved_credits_for=lambda _: 4,
        )
        assert batch is not None
        ctx.store.record_outcomes(batch.id, [ContactOutcome("c1", "not_found", {}, False)])

        def excluded() -> dict[str, str]:
            return ctx.store.excluded_contacts(
                "hs",
                ["c1"],
                found_cooldown=timedelta(days=source.cooldown.found_days),
                not_found_cooldown=timedelta(days=source.cooldown.not_found_days),
            )

        assert excluded() == {"c1": "cooldown"}
        assert source_budget(ctx, source, 1000).ceilings["per_day"] == 6

        clock.advance(days=1, minutes=1)
        assert excluded() == {}
        assert source_budget(ctx, source, 1000).ceilings["per_day"] == 10
