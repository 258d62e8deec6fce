"""The promises to the user, shown end to end against the emulators."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sync.fields import FIELD_PHONE
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.people import truth_for
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.pipeline.conftest import context, make_config
from tests.support.dialects import both_api_versions  # noqa: F401 - runs every test in v1 and v2


def _missing(world: SandboxWorld, field: str) -> list[str]:
    return [
        rid
        for rid, p in world.hubspot.records.items()
        if not p.get(field) and p.get("crm_sync_opt_out") != "true"
    ]


def test_only_missing_fields_are_asked(world: SandboxWorld, tmp_path: Path) -> None:
    """A contact with an email but no phone is sent with contact.phones only; nothing paid twice."""
    has_email_no_phone = set(_missing(world, "phone")) - set(_missing(world, "email"))
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        run_cycle(ctx)
    sent = {s.custom["crm_id"]: s for s in world.enrichment.submitted}
    checked = [rid for rid in has_email_no_phone if rid in sent]
    assert len(checked) > 10
    for rid in checked:
        assert list(sent[rid].enrich_fields) == [FIELD_PHONE]
    # credits charged for emails = only for contacts that were asked for an email
    asked_email = {rid for rid, s in sent.items() if "contact.emails" in s.enrich_fields}
    assert asked_email.isdisjoint(has_email_no_phone)


def test_a_person_edit_before_write_back_is_kept(world: SandboxWorld, tmp_path: Path) -> None:
    """A value typed into the CRM between submit and write back is never overwritten."""
    world.enrichment.completion_delay = 30.0  # results wait until the test says so
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        report = run_cycle(ctx, wait=False)
        assert report.source("hubspot").counts.submitted > 0
        sent = [s.custom["crm_id"] for s in world.enrichment.submitted]
        edited = {}
        for rid in sent[:15]:
            for field in ("email", "phone"):
                if not world.hubspot.records[rid].get(field):
                    value = f"typed.{rid}@person.example" if field == "email" else "+14155552671"
                    world.hubspot.set_property(rid, field, value)
                    edited[(rid, field)] = value
        world.enrichment.finish_all()
        counts: dict[str, SourceCounts] = {}
        collect_and_write(ctx, counts, wait=True)
    assert edited
    for (rid, field), value in edited.items():
        assert world.hubspot.records[rid][field] == value
    assert counts["hubspot"].kept_existing >= 1
    written_ids = {w.record_id for w in world.hubspot.writes}
    assert all(
        field not in w.properties
        for w in world.hubspot.writes
        for (rid, field) in edited
        if w.record_id == rid
    )
    assert written_ids


def test_low_balance_submits_nothing(world: SandboxWorld, tmp_path: Path) -> None:
    """Below min_balance the source is skipped, said so, and the exit code is 4."""
    world.enrichment.balance = 50
    config = make_config(world, tmp_path, run={"min_balance": 100, "poll_initial_seconds": 0.2})
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert report.exit_code == 4
    assert not world.enrichment.submitted
    assert all("min_balance" in s.message for s in report.sources)


def test_budgets_are_never_exceeded(world: SandboxWorld, tmp_path: Path) -> None:
    """Worst-case cost planned stays within the per-run budget; the rest is deferred."""
    source = world.hubspot_source(budget={"per_run": 300, "per_day": 1000})
    config = make_config(world, tmp_path, sources=[source])
    with context(config) as ctx:
        report = run_cycle(ctx)
        worst = sum(
            (10 if "contact.phones" in s.enrich_fields else 0)
            + (1 if "contact.emails" in s.enrich_fields else 0)
            for s in world.enrichment.submitted
        )
        assert 0 < worst <= 300
        assert report.source("hubspot").counts.deferred > 0
        assert report.source("hubspot").message.startswith("budget reached")


def test_reserve_and_balance_cap_planning(world: SandboxWorld, tmp_path: Path) -> None:
    """Never plan more worst-case cost than the balance minus the reserve."""
    world.enrichment.balance = 400
    config = make_config(
        world,
        tmp_path,
        sources=[world.hubspot_source()],
        run={"reserve": 150, "poll_initial_seconds": 0.2},
    )
    with context(config) as ctx:
        run_cycle(ctx)
    worst = sum(
        (10 if "contact.phones" in s.enrich_fields else 0)
        + (1 if "contact.emails" in s.enrich_fields else 0)
        for s in world.enrichment.submitted
    )
    assert 0 < worst <= 250


def test_not_found_is_not_asked_again_within_cooldown(world: SandboxWorld, tmp_path: Path) -> None:
    """A second run sends nothing for contacts asked in the first, found or not."""
    config = make_config(world, tmp_path)
    with context(config) as ctx:
        first = run_cycle(ctx)
        assert sum(s.counts.not_found for s in first.sources) > 0
        submitted_before = len(world.enrichment.submitted)
        second = run_cycle(ctx)
    assert len(world.enrichment.submitted) == submitted_before
    assert sum(s.counts.skipped["cooldown"] for s in second.sources) > 0
    assert max(world.enrichment.submissions_per_contact().values()) == 1


def test_cooldown_zero_asks_not_found_again(world: SandboxWorld, tmp_path: Path) -> None:
    """With a zero not-found cooldown, contacts with nothing found are asked again next run."""
    source = world.hubspot_source(cooldown={"found_days": 90, "not_found_days": 0})
    config = make_config(world, tmp_path, sources=[source])
    with context(config) as ctx:
        run_cycle(ctx)
        before = len(world.enrichment.submitted)
        run_cycle(ctx)
    assert len(world.enrichment.submitted) > before


def test_salesforce_gets_found_values(world: SandboxWorld, tmp_path: Path) -> None:
    """Salesforce contacts get deliverable emails and E.164 phones; catch-all is not written."""
    config = make_config(world, tmp_path, sources=[world.salesforce_source()])
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert report.exit_code == 0, report.as_dict()
    counts = report.source("salesforce").counts
    assert counts.emails_written > 0
    assert counts.phones_written > 0
    sent = {s.custom["crm_id"]: s for s in world.enrichment.submitted}
    checked = 0
    for rid, item in sent.items():
        record = world.salesforce.records[rid]
        account = world.salesforce.records.get(record.get("AccountId") or "", {})
        truth = truth_for(
            record["FirstName"] or "", record["LastName"] or "", account.get("Website") or ""
        )
        if "contact.emails" in item.enrich_fields:
            if truth.email_status in {"DELIVERABLE", "HIGH_PROBABILITY"}:
                assert record["Email"] == truth.work_email
                checked += 1
            elif truth.email_status == "CATCH_ALL":
                assert record["Email"] is None
        if "contact.phones" in item.enrich_fields and truth.phone_e164:
            assert record["MobilePhone"] == truth.phone_e164
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("api_version", ["v1"])  # about the CRM scan: one dialect
def test_max_contacts_per_run_spans_all_sources(world: SandboxWorld, tmp_path: Path) -> None:
    """run.max_contacts_per_run caps the contacts sent by all sources together."""
    config = make_config(
        world, tmp_path, run={"max_contacts_per_run": 130, "poll_initial_seconds": 0.2}
    )
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert sum(s.counts.submitted for s in report.sources) == 130
    assert len(world.enrichment.submitted) == 130


@pytest.mark.parametrize("api_version", ["v1"])  # about the CRM scan: one dialect
def test_bounded_scan_resumes_where_it_stopped(world: SandboxWorld, tmp_path: Path) -> None:
    """With max_scan_per_run, each run reads a slice of the backlog and the next one continues."""
    source = world.hubspot_source(max_scan_per_run=40)
    config = make_config(world, tmp_path, sources=[source])
    scans: list[int] = []
    wrapped = False
    with context(config) as ctx:
        for _ in range(6):
            report = run_cycle(ctx)
            scans.append(report.source("hubspot").counts.scanned)
            wrapped = ctx.store.scan_cursor("hubspot") is None  # the end: next run starts over
            if wrapped:
                break
        everything = run_cycle(ctx)  # a fresh pass from the start finds nothing new to send
    assert wrapped
    assert all(n <= 40 for n in scans)
    assert len(scans) >= 3
    assert everything.source("hubspot").counts.submitted == 0
    sent = world.enrichment.submissions_per_contact()
    assert max(sent.values()) == 1
    assert len(sent) > 60


def test_salesforce_bounded_scan_resumes(tmp_path: Path) -> None:
    """The Salesforce connector resumes after the stored record id (`Id > '...'`)."""
    options = WorldOptions(hubspot_contacts=0, salesforce_contacts=600, completion_delay=0.05)
    with SandboxWorld(options) as world:
        source = world.salesforce_source(max_scan_per_run=200)
        config = make_config(world, tmp_path, sources=[source])
        with context(config) as ctx:
            first = run_cycle(ctx)
            cursor = ctx.store.scan_cursor("salesforce")
            second = run_cycle(ctx)
            third = run_cycle(ctx)
        sent = world.enrichment.submissions_per_contact()
    assert cursor is not None
    assert first.source("salesforce").counts.scanned == 200
    assert second.source("salesforce").counts.submitted > 0
    assert third.source("salesforce").counts.scanned < 200  # the tail of the backlog
    assert max(sent.values()) == 1
