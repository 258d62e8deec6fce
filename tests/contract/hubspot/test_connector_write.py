"""The connector's batch read and write against the emulator, over real sockets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.base import FieldUpdate, WriteStatus
from connectors.hubspot import HubSpotConnector
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.hubspot import TOKEN, person

Connect = Callable[..., HubSpotConnector]


@pytest.fixture
def emulator() -> HubSpotEmulator:
    """Five contacts without email or phone, plus one that owns taken@acme.com."""
    people = [person(i) for i in range(5)] + [person(5, email="taken@acme.com")]
    return HubSpotEmulator(people=people, token=TOKEN)


def test_conflicting_email_rejects_only_that_record(
    emulator: HubSpotEmulator, connect: Connect
) -> None:
    """A whole-batch 409 falls back to one write per record: the rest are written."""
    connector = connect(emulator)
    updates = [
        FieldUpdate("101", {"email": "ada@acme.com", "phone": "+14155550101"}),
        FieldUpdate("102", {"email": "taken@acme.com"}),
        FieldUpdate("103", {"phone": "+14155550103"}),
    ]
    outcomes = connector.write(updates)
    assert [o.status for o in outcomes] == [
        WriteStatus.WRITTEN,
        WriteStatus.REJECTED,
        WriteStatus.WRITTEN,
    ]
    assert outcomes[1].record_id == "102"
    assert "Contact already exists. Existing ID: 106" in outcomes[1].reason
    records = emulator.records
    assert records["101"]["email"] == "ada@acme.com"
    assert records["102"]["email"] is None
    assert records["103"]["phone"] == "+14155550103"
    assert emulator.calls["batch_update"] == 1
    assert emulator.calls["update"] == 3


def test_partial_errors_are_mapped_to_their_records(
    emulator: HubSpotEmulator, connect: Connect
) -> None:
    """A 207 with an unknown id and an invalid email rejects exactly those two records."""
    connector = connect(emulator)
    updates = [
        FieldUpdate("101", {"phone": "+14155550101"}),
        FieldUpdate("999", {"phone": "+14155550999"}),
        FieldUpdate("102", {"email": "not-an-email"}),
        FieldUpdate("103", {"email": "grace@acme.com"}),
    ]
    outcomes = connector.write(updates)
    by_id = {o.record_id: o for o in outcomes}
    assert [o.record_id for o in outcomes] == ["101", "999", "102", "103"]
    assert by_id["101"].status is WriteStatus.WRITTEN
    assert by_id["103"].status is WriteStatus.WRITTEN
    assert by_id["999"].status is WriteStatus.REJECTED
    assert "OBJECT_NOT_FOUND" in by_id["999"].reason
    assert by_id["102"].status is WriteStatus.REJECTED
    assert "not-an-email is invalid" in by_id["102"].reason
    assert emulator.records["102"]["email"] is None
    assert emulator.calls["batch_read"] == 0  # attributed without re-reading


def test_unattributable_errors_are_decided_by_rereading(
    emulator: HubSpotEmulator, connect: Connect
) -> None:
    """Two invalid emails in one 207 cannot be told apart by value: a re-read decides."""
    connector = connect(emulator)
    updates = [
        FieldUpdate("101", {"email": "bad@"}),
        FieldUpdate("102", {"email": "bad@@"}),
        FieldUpdate("103", {"phone": "+14155550103"}),
    ]
    outcomes = connector.write(updates)
    assert [o.status for o in outcomes] == [
        WriteStatus.REJECTED,
        WriteStatus.REJECTED,
        WriteStatus.WRITTEN,
    ]
    assert "is invalid" in outcomes[0].reason
    assert emulator.calls["batch_read"] == 1


def test_writes_are_batched_by_100_without_duplicate_ids(
    connect: Connect,
) -> None:
    """250 updates (one record twice) take three batch calls and keep their order."""
    emulator = HubSpotEmulator(people=[person(i) for i in range(250)], token=TOKEN)
    connector = connect(emulator)
    updates = [FieldUpdate(str(101 + i), {"phone": f"+1415555{i:04d}"}) for i in range(249)]
    updates.append(FieldUpdate("101", {"email": "again@acme.com"}))
    outcomes = connector.write(updates)
    assert all(o.status is WriteStatus.WRITTEN for o in outcomes)
    assert [o.record_id for o in outcomes] == [u.record_id for u in updates]
    assert emulator.calls["batch_update"] == 3
    assert emulator.records["101"]["email"] == "again@acme.com"
    assert len(emulator.writes) == 250


def test_read_returns_found_records_and_omits_missing(connect: Connect) -> None:
    """read() splits 150 ids into two calls and leaves unknown ids out."""
    emulator = HubSpotEmulator(
        people=[person(i, email=f"p{i}@acme.com") for i in range(149)], token=TOKEN
    )
    connector = connect(emulator)
    ids = [str(101 + i) for i in range(149)] + ["5"]
    found = connector.read(ids)
    assert len(found) == 149
    assert "5" not in found
    assert found["101"].email == "p0@acme.com"
    assert found["101"].phone is None
    assert emulator.calls["batch_read"] == 2
