"""No paid result is lost to a config mistake: mapped fields are checked before credits are
spent, and a write refused for the whole field keeps the results for later (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
import yaml

from crm_sync.cli import main
from crm_sync.commands.status import collect_status, render
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.world import SandboxWorld
from tests.pipeline.conftest import context, make_config


@pytest.fixture(autouse=True)
def _reset_logging() -> object:
    yield
    structlog.reset_defaults()


def test_mistyped_hubspot_field_spends_nothing_and_exits_2(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fields: {phone: phonee}`: no credit spent, nothing written, exit 2 naming the field."""
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}")
    config["sources"] = [world.hubspot_source(fields={"email": "email", "phone": "phonee"})]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--once", "--json", "--config", str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    (source,) = report["sources"]
    assert source["status"] == "failed"
    assert "fields.phone: HubSpot contact property 'phonee' does not exist" in source["message"]
    assert not world.enrichment.submitted
    assert world.enrichment.credits_charged == 0
    assert not world.hubspot.writes


def test_read_only_salesforce_field_spends_nothing(world: SandboxWorld, tmp_path: Path) -> None:
    """A Salesforce field that is not updateable stops the source before any POST (exit 2)."""
    source = world.salesforce_source(fields={"email": "Email", "phone": "LastModifiedDate"})
    config = make_config(world, tmp_path, sources=[source])
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert report.exit_code == 2
    assert "Contact.LastModifiedDate is not updateable" in report.source("salesforce").message
    assert not world.enrichment.submitted


def test_field_deleted_mid_run_holds_the_paid_results(world: SandboxWorld, tmp_path: Path) -> None:
    """A property deleted between submit and write-back: the CRM refuses the field, so the
    results stay `received`, unwritten, their contacts in flight (not cooled down), and the
    run says so with exit 2."""
    world.enrichment.completion_delay = 30.0  # results wait until the test says so
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        first = run_cycle(ctx, wait=False)
        assert first.source("hubspot").counts.submitted > 0
        world.hubspot.store.known.discard("phone")  # an admin deletes the property
        world.enrichment.finish_all()
        second = run_cycle(ctx)  # its field check stops submitting; write-back holds
        batches = ctx.store.replayable_batches(source="hubspot")
        held_contacts = [c.record_id for b in batches for c in b.contacts if c.outcome is None]
        rows = [ctx.store.ledger_row("hubspot", rid) for rid in held_contacts]
        status = collect_status(ctx.store)
    assert second.exit_code == 2
    assert sum(h["contacts"] for h in status["held"]) == len(held_contacts)
    assert all(h["reason"].startswith("held: PROPERTY_DOESNT_EXIST") for h in status["held"])
    assert "Held, unwritten: batch" in render(status)
    counts = second.source("hubspot").counts
    assert counts.held_for_config > 0
    assert counts.rejected_reasons["crm_field:PROPERTY_DOESNT_EXIST"] == counts.held_for_config
    as_json = second.as_dict()["sources"][0]["counts"]
    assert as_json["rejected_reasons"] == {
        "crm_field:PROPERTY_DOESNT_EXIST": counts.held_for_config
    }
    assert as_json["held_for_config"] == counts.held_for_config
    assert counts.rejected == 0
    assert batches
    assert all(b.state == "received" for b in batches)
    assert all((b.error or "").startswith("held: PROPERTY_DOESNT_EXIST") for b in batches)
    assert held_contacts
    assert all(row is not None and row.in_flight_batch_id for row in rows)
    assert all("phone" not in w.properties for w in world.hubspot.writes)


def test_a_held_batch_is_written_by_a_later_run(world: SandboxWorld, tmp_path: Path) -> None:
    """Once the property exists again, a later write-back writes the held results."""
    world.enrichment.completion_delay = 30.0
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        run_cycle(ctx, wait=False)
        world.hubspot.store.known.discard("phone")
        world.enrichment.finish_all()
        counts: dict[str, SourceCounts] = {}
        collect_and_write(ctx, counts, wait=True)
        assert counts["hubspot"].held_for_config > 0
        world.hubspot.store.known.add("phone")
        ctx.store.release_claims(ctx.owner)  # as the claim lapses, or a new process starts
        later: dict[str, SourceCounts] = {}
        collect_and_write(ctx, later)
        assert ctx.store.replayable_batches(source="hubspot") == []
    assert later["hubspot"].phones_written > 0
    assert later["hubspot"].held_for_config == 0
