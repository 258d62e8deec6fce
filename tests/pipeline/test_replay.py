"""`crm-sync replay` writes the paid results a field refusal held, once the field is fixed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from crm_sync.cli import main
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.records import ContactOutcome, PlannedContact
from crm_sync.store.store import Store
from tests.pipeline.conftest import context, make_config
from tests.pipeline.write_helpers import item, submit_and_receive


@pytest.fixture(autouse=True)
def _reset_logging() -> Any:
    yield
    structlog.reset_defaults()


def _held_world(world: SandboxWorld, tmp_path: Path) -> tuple[str, list[str]]:
    """Submit, delete the phone property, collect: every result held. The config path, and
    the held record ids whose result has a phone."""
    world.enrichment.completion_delay = 30.0
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        run_cycle(ctx, wait=False)
        world.hubspot.store.known.discard("phone")
        world.enrichment.finish_all()
        counts: dict[str, SourceCounts] = {}
        collect_and_write(ctx, counts, wait=True)
        assert counts["hubspot"].held_for_config > 0
        held = [
            c.record_id
            for b in ctx.store.replayable_batches(source="hubspot")
            for c in b.contacts
            if c.outcome is None and "contact.phones" in c.fields_asked
        ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.config_dict(f"sqlite:///{tmp_path / 'state.sqlite3'}")))
    return str(path), held


def test_replay_writes_held_results_after_the_fix(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run shows and changes nothing; replay then writes with the same rules: a phone a
    person typed meanwhile is kept; every held contact is settled, none left in flight."""
    path, held = _held_world(world, tmp_path)
    assert held
    world.hubspot.store.known.add("phone")  # the admin restores the property
    typed = held[0]
    world.hubspot.set_property(typed, "phone", "+14155550100")  # a person types one meanwhile
    capsys.readouterr()
    assert main(["replay", "--dry-run", "--json", "--config", path]) == 0
    dry = json.loads(capsys.readouterr().out)
    would = {w["record_id"]: w for w in dry["would_write"]}
    assert any("phone" in w["values"] for w in would.values())
    assert "phone" not in would[typed]["values"]
    assert not any("phone" in w.properties for w in world.hubspot.writes)

    assert main(["replay", "--source", "hubspot", "--json", "--config", path]) == 0
    report = json.loads(capsys.readouterr().out)
    counts = report["sources"][0]["counts"]
    assert counts["phones_written"] > 0
    assert counts["held_for_config"] == 0
    assert world.hubspot.records[typed]["phone"] == "+14155550100"
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        assert store.replayable_batches() == []
        rows = [store.ledger_row("hubspot", rid) for rid in held]
    finally:
        store.close()
    assert all(row is not None and row.in_flight_batch_id is None for row in rows)
    assert {row.outcome for row in rows if row} <= {"written", "kept_existing", "not_accepted"}


def test_replay_with_the_field_still_missing_writes_nothing(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the field is still wrong, replay exits 2 naming it, and the results stay held."""
    path, _ = _held_world(world, tmp_path)
    writes_before = len(world.hubspot.writes)
    assert main(["replay", "--config", path]) == 2
    out = capsys.readouterr().out
    assert "fields.phone: HubSpot contact property 'phone' does not exist" in out
    assert len(world.hubspot.writes) == writes_before
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        assert store.replayable_batches(source="hubspot")
    finally:
        store.close()


def test_replay_since_a_later_date_takes_nothing(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since filters by the day the result was received."""
    path, _ = _held_world(world, tmp_path)
    world.hubspot.store.known.add("phone")
    writes_before = len(world.hubspot.writes)
    capsys.readouterr()
    assert main(["replay", "--since", "2999-01-01", "--json", "--config", path]) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["counts"]["phones_written"] == 0
    assert len(world.hubspot.writes) == writes_before


def test_replay_writes_results_an_older_version_recorded_as_rejected(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store from before this version: a mistyped field made the CRM reject every record
    (`rejected: ...`) of a written batch. Replay writes those paid results, except for a
    contact asked again since (its newer batch owns it)."""
    ids = [r for r, p in world.hubspot.records.items() if not p.get("email")][:4]
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    refusal = (
        'rejected: VALIDATION_ERROR: Property values were not valid: [{"isValid": false, '
        '"error": "PROPERTY_DOESNT_EXIST", "name": "emial"}]'
    )
    with context(config) as ctx:
        names = {r: world.hubspot.records[r] for r in ids}
        items = [
            item(
                r,
                "hubspot",
                first=names[r].get("firstname"),
                last=names[r].get("lastname"),
                email=f"paid.{r}@example.com",
            )
            for r in ids
        ]
        batch_id = submit_and_receive(
            ctx, "hubspot", items, asked=dict.fromkeys(ids, ("contact.emails",))
        )
        (claimed,) = ctx.store.claim_received(owner=ctx.owner, limit=5, lease=timedelta(minutes=5))
        assert claimed.id == batch_id
        ctx.store.record_outcomes(batch_id, [ContactOutcome(r, refusal, {}, True) for r in ids])
        assert ctx.store.mark_written(batch_id, owner=ctx.owner)
        # the last contact was asked again since: a newer batch holds it
        newer = ctx.store.plan_batch(
            source="hubspot",
            run_id="later",
            owner=ctx.owner,
            name="newer",
            contacts=[PlannedContact(ids[3], ("contact.emails",), {})],
            reserved_credits_for=len,
        )
        assert newer is not None
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.config_dict(f"sqlite:///{tmp_path / 'state.sqlite3'}")))
    capsys.readouterr()
    assert main(["replay", "--source", "hubspot", "--json", "--config", str(path)]) == 0
    counts = json.loads(capsys.readouterr().out)["sources"][0]["counts"]
    assert counts["emails_written"] == 3
    for r in ids[:3]:
        assert world.hubspot.records[r]["email"] == f"paid.{r}@example.com"
    assert not world.hubspot.records[ids[3]].get("email")
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        rows = {r: store.ledger_row("hubspot", r) for r in ids}
        batch = store.get_batch(batch_id)
    finally:
        store.close()
    assert all(rows[r].outcome == "written" for r in ids[:3])  # type: ignore[union-attr]
    assert rows[ids[3]].in_flight_batch_id == newer.id  # type: ignore[union-attr]
    assert batch is not None
    assert {c.record_id: c.outcome for c in batch.contacts}[ids[3]] == refusal
