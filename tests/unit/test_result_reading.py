"""Reading a result per item: what makes an item `malformed`, and what makes a whole result
unreadable. Pure model tests; the socket-level behaviour is in test_per_item.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from crm_sync.enrichment.models import EnrichmentResult
from crm_sync.enrichment.prices import credits_of
from crm_sync.enrichment.responses import parse_result
from crm_sync.errors import UnreadableResult

GOOD = {"custom": {"crm_id": "1"}, "contact": {"most_probable_email": "a@acme.com"}}


def _result(*items: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "e-1", "status": "FINISHED", "datas": list(items), **extra}


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ({"custom": {"crm_id": "2"}, "contact": {"most_probable_phone": 14155550100}}, "phone"),
        ({"custom": {"crm_id": "2"}, "contact": {"emails": "a@acme.com"}}, "emails"),
        ({"custom": {"crm_id": "2"}, "contact": {"phones": [{"number": 5}]}}, "number"),
        ({"custom": {"crm_id": "2"}, "contact": ["not", "an", "object"]}, "contact"),
        ({"custom": ["2"], "contact": {}}, "custom"),
        ("just a string", "<item>"),
    ],
)
def test_one_bad_item_is_malformed_and_the_others_are_read(item: Any, where: str) -> None:
    """The bad item is set aside with a reason naming the field; the good one is read."""
    result = EnrichmentResult.model_validate(_result(GOOD, item))
    assert [i.custom["crm_id"] for i in result.datas] == ["1"]
    [bad] = result.malformed
    assert bad.index == 1
    assert where in bad.reason
    assert bad.raw == item


def test_a_malformed_items_custom_is_read_as_far_as_it_can_be() -> None:
    """String values of `custom` still say whose item it was."""
    item = {"custom": {"crm_id": "7", "source": "hs", "n": 3}, "contact": {"phones": 5}}
    [bad] = EnrichmentResult.model_validate(_result(item)).malformed
    assert bad.custom == {"crm_id": "7", "source": "hs"}


def test_a_reason_carries_no_input_value() -> None:
    """A reason names fields and rules, never the received values (they may be anything)."""
    leaked = "sk_live_secret_value"
    item = {"custom": {"crm_id": "1"}, "contact": {"most_probable_phone": {"v": leaked}}}
    [bad] = EnrichmentResult.model_validate(_result(item)).malformed
    assert leaked not in bad.reason


def test_malformed_items_survive_a_round_trip_through_the_store() -> None:
    """`wire()` (what a poll stores) keeps the bad item as received, so write-back sees it."""
    bad = {"custom": {"crm_id": "2"}, "contact": {"most_probable_phone": 1}}
    first = EnrichmentResult.model_validate(_result(GOOD, bad))
    again = EnrichmentResult.model_validate(first.wire())
    assert [m.raw for m in again.malformed] == [bad]
    assert [i.custom for i in again.datas] == [{"crm_id": "1"}]


def test_an_unreadable_cost_is_estimated_instead() -> None:
    """A cost that is not a count of credits does not make the result unreadable."""
    result = EnrichmentResult.model_validate(_result(GOOD, cost={"credits": "lots"}))
    assert result.credits is None
    assert credits_of(result) == 0  # no accepted status: nothing charged by the estimate


@pytest.mark.parametrize(
    "body",
    [
        _result(GOOD) | {"datas": "unavailable"},
        _result(GOOD) | {"datas": {"0": GOOD}},
        _result(GOOD) | {"id": ["e-1"]},
        ["not", "an", "object"],
    ],
)
def test_an_unreadable_envelope_fails_as_a_whole(body: Any) -> None:
    """No list of items, or no object at all: UnreadableResult (retried, then failed)."""
    if isinstance(body, dict):
        with pytest.raises(ValidationError):
            EnrichmentResult.model_validate(body)
    with pytest.raises(UnreadableResult, match=r"unreadable|not a JSON object") as info:
        parse_result("e-1", body, 200)
    assert info.value.code == "result.unreadable"
