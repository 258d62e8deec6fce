"""Only plausible values reach the CRM, and only on the record the result is about (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sync.commands.status import collect_status, render
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.enrichment.styles import AnswerStyles
from crm_sync.sandbox.people import slug
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.pipeline.conftest import context, make_config
from tests.pipeline.write_helpers import ASKED, item, submit_and_receive

LONG_EMAIL = "a" * 5000 + "@example.com"  # 5,012 characters
SCRIPT_EMAIL = "<script>alert(1)</script>@example.com"
JUNK_EMAIL = "\ufffd\u2122\u00a9@example.com"
CONTROL_EMAIL = "ana\u0007smith@example.com"
LETTERS_PHONE = "+1 415-555-CALL"


def _named_without_email_or_phone(world: SandboxWorld, n: int) -> list[str]:
    found = [
        rid
        for rid, p in world.hubspot.records.items()
        if p.get("firstname") and p.get("lastname") and not p.get("email") and not p.get("phone")
    ]
    assert len(found) >= n
    return found[:n]


def _names(world: SandboxWorld, rid: str) -> dict[str, str | None]:
    record = world.hubspot.records[rid]
    return {"first": record["firstname"], "last": record["lastname"]}


def test_implausible_values_are_refused(world: SandboxWorld, tmp_path: Path) -> None:
    """A 5,012-char email, a <script> local part, junk, a control character and a phone with
    letters are never written (`invalid_value`); the plausible values beside them are."""
    ids = _named_without_email_or_phone(world, 6)
    bad = [LONG_EMAIL, SCRIPT_EMAIL, JUNK_EMAIL, CONTROL_EMAIL]
    items = [
        item(rid, "hubspot", email=e, **_names(world, rid))
        for rid, e in zip(ids[:4], bad, strict=True)
    ]
    items.append(item(ids[4], "hubspot", phone=LETTERS_PHONE, **_names(world, ids[4])))
    good_email = f"ok.{ids[5]}@example.com"
    items.append(
        item(ids[5], "hubspot", email=good_email, phone="+1 415 555 2671", **_names(world, ids[5]))
    )
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    counts: dict[str, SourceCounts] = {}
    with context(config) as ctx:
        batch_id = submit_and_receive(ctx, "hubspot", items, asked=dict.fromkeys(ids, ASKED))
        collect_and_write(ctx, counts)
        batch = ctx.store.get_batch(batch_id)
        ledger = {rid: ctx.store.ledger_row("hubspot", rid) for rid in ids}
    assert batch is not None
    assert batch.state == "written"
    written = {w.record_id: w.properties for w in world.hubspot.writes}
    assert written == {ids[5]: {"email": good_email, "phone": "+14155552671"}}
    for rid in ids[:5]:
        row = ledger[rid]
        assert row is not None
        assert row.outcome == "invalid_value", row.outcome
        assert row.found  # paid for: the found cooldown applies
    assert "email: The email address is too long" in (ledger[ids[0]].detail or "")  # type: ignore[union-attr]
    assert ledger[ids[4]].detail == "phone: the phone number contains letters"  # type: ignore[union-attr]
    hubspot = counts["hubspot"]
    assert hubspot.invalid_value == 5
    assert hubspot.rejected_reasons["invalid_value:email_too_long"] == 1
    assert hubspot.rejected_reasons["invalid_value:phone_has_letters"] == 1
    assert sum(v for k, v in hubspot.rejected_reasons.items() if k.startswith("invalid_value")) == 5
    assert hubspot.emails_written == 1
    assert hubspot.phones_written == 1


def test_a_result_for_someone_else_is_not_written(world: SandboxWorld, tmp_path: Path) -> None:
    """A result naming another person (or another company) is `identity_mismatch`, unwritten;
    accents and case do not count as a difference."""
    ids = _named_without_email_or_phone(world, 4)
    world.hubspot.set_property(ids[2], "firstname", "José-Luis")
    world.hubspot.set_property(ids[2], "lastname", "Núñez")
    world.hubspot.set_property(ids[3], "website", "https://www.acme.example/about")
    other = _names(world, ids[1])
    items = [
        item(ids[0], "hubspot", email=f"wrong.{ids[0]}@example.com", **other),  # someone else
        item(ids[1], "hubspot", email=f"right.{ids[1]}@example.com", **other),
        item(ids[2], "hubspot", email=f"jl.{ids[2]}@example.com", first="JOSE LUIS", last="nunez"),
        item(
            ids[3],
            "hubspot",
            email=f"x.{ids[3]}@example.com",
            domain="globex.example",
            **_names(world, ids[3]),
        ),
    ]
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    counts: dict[str, SourceCounts] = {}
    with context(config) as ctx:
        submit_and_receive(ctx, "hubspot", items, asked=dict.fromkeys(ids, ("contact.emails",)))
        collect_and_write(ctx, counts)
        outcomes = {rid: ctx.store.ledger_row("hubspot", rid) for rid in ids}
        status = collect_status(ctx.store)
    written = {w.record_id: w.properties.get("email") for w in world.hubspot.writes}
    assert written == {ids[1]: f"right.{ids[1]}@example.com", ids[2]: f"jl.{ids[2]}@example.com"}
    for rid, code in ((ids[0], "first_name"), (ids[3], "domain")):
        row = outcomes[rid]
        assert row is not None
        assert row.outcome == "identity_mismatch", row.outcome
        assert (row.detail or "").startswith(f"{code} differs: record "), row.detail
        assert row.found
    assert counts["hubspot"].identity_mismatch == 2
    assert counts["hubspot"].rejected_reasons["identity_mismatch:domain"] == 1
    shown = status["contacts_by_outcome"]["hubspot"]
    assert shown["identity_mismatch"] == 2
    assert shown["written"] == 2
    for name in ("invalid_input", "invalid_value", "malformed", "not_returned"):
        assert shown[name] == 0
    text = render(status)
    assert "identity_mismatch  2" in text
    assert "not_returned       0" in text


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_swapped_custom_never_swaps_two_people(crm: str, tmp_path: Path) -> None:
    """With the emulator answering items with each other's `custom`, no record gets another
    person's email: each written email is the record's own, the swapped ones are refused."""
    options = WorldOptions(
        hubspot_contacts=120 if crm == "hubspot" else 0,
        salesforce_contacts=120 if crm == "salesforce" else 0,
        completion_delay=0.05,
        rate_limit_calls=1000,
        enrichment_kwargs={"styles": AnswerStyles(swapped_custom=True)},
    )
    with SandboxWorld(options) as world:
        source = world.hubspot_source() if crm == "hubspot" else world.salesforce_source()
        config = make_config(world, tmp_path, sources=[source], run={"batch_size": 10})
        with context(config) as ctx:
            report = run_cycle(ctx)
        if crm == "hubspot":
            writes = [(w.record_id, w.properties.get("email")) for w in world.hubspot.writes]
            names = {
                rid: (p.get("firstname"), p.get("lastname"))
                for rid, p in world.hubspot.records.items()
            }
        else:
            writes = [(w.record_id, w.fields.get("Email")) for w in world.salesforce.writes]
            names = {
                rid: (r.get("FirstName"), r.get("LastName"))
                for rid, r in world.salesforce.records.items()
            }
    emails = [(rid, email) for rid, email in writes if email]
    assert emails
    for rid, email in emails:
        first, last = names[rid]
        assert email.split("@")[0] == f"{slug(first or '')}.{slug(last or '')}", (rid, email)
    counts = report.source(crm).counts
    assert counts.identity_mismatch >= 2
    assert counts.emails_written > 5
