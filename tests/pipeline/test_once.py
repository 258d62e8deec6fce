"""End to end: the real connectors and client against the three emulators over sockets."""

from __future__ import annotations

from pathlib import Path

from connectors.base import Contact
from crm_sync.enrichment.input_rules import named_identity_problem
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.rules.policies import build_request, normalize_domain
from crm_sync.sandbox.people import truth_for_request
from crm_sync.sandbox.world import SandboxWorld
from tests.pipeline.conftest import context, make_config
from tests.support.dialects import both_api_versions  # noqa: F401 - runs every test in v1 and v2

ACCEPTED = {"DELIVERABLE", "HIGH_PROBABILITY"}


def _hubspot_expectations(world: SandboxWorld) -> dict[str, dict[str, str]]:
    """For each HubSpot record the daemon should fill: field -> value, from the ground truth."""
    expected: dict[str, dict[str, str]] = {}
    for rid, props in world.hubspot.records.items():
        if props.get("crm_sync_opt_out") == "true":
            continue
        contact = Contact(
            rid,
            props.get("firstname"),
            props.get("lastname"),
            props.get("company"),
            props.get("website"),
            props.get("hs_linkedin_url"),
        )
        if _refused_by_strict_api(contact):
            continue
        truth = truth_for_request(
            contact.first_name,
            contact.last_name,
            normalize_domain(contact.domain),
            contact.company,
            contact.linkedin_url,
        )
        want: dict[str, str] = {}
        if not props.get("email") and truth.work_email and truth.email_status in ACCEPTED:
            want["email"] = truth.work_email
        if not props.get("phone") and truth.phone_e164:
            want["phone"] = truth.phone_e164
        if want:
            expected[rid] = want
    return expected


def test_hubspot_gets_every_found_value_in_e164(world: SandboxWorld, tmp_path: Path) -> None:
    """Every deliverable email and valid phone is written; catch-all emails are not."""
    expected = _hubspot_expectations(world)
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    with context(config) as ctx:
        report = run_cycle(ctx)
    assert report.exit_code == 0, report.as_dict()
    assert expected
    for rid, want in expected.items():
        for field, value in want.items():
            assert world.hubspot.records[rid][field] == value, (rid, field)
    counts = report.source("hubspot").counts
    assert counts.emails_written == sum("email" in w for w in expected.values())
    assert counts.phones_written == sum("phone" in w for w in expected.values())
    assert max(world.enrichment.submissions_per_contact().values()) == 1


def _refused_by_strict_api(contact: Contact) -> str | None:
    """Why the strict emulator (the tests' default) refuses this contact's request item."""
    return named_identity_problem(build_request(contact, ("contact.emails",), "any").wire())
