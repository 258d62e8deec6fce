"""The client speaking v2: each result variant mapped to the internal model; v2 requests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from crm_sync.enrichment.models import (
    BulkRequest,
    ContactRequest,
    EnrichmentStatus,
)
from crm_sync.enrichment.wire_v2 import UNREADABLE, V2
from crm_sync.errors import InsufficientCredits, NotFoundError, ServerError, ValidationError
from crm_sync.fields import FIELD_PERSONAL_EMAIL, FIELD_PHONE, FIELD_WORK_EMAIL
from tests.unit.enrichment.test_client_unit import Script, answer, err, make

JOB = "2db5ea61-1752-42cf-8ea1-ab1da060cd0a"


def v2_client(script: Script, **kwargs: Any) -> Any:
    client, _ = make(script, api_version="v2", **kwargs)
    return client


def record(**contact_info: Any) -> dict[str, Any]:
    return {
        "input": {"first_name": "John", "last_name": "Snow", "company_domain": "example.com"},
        "custom": {"crm_id": "7", "source": "hubspot"},
        "contact_info": contact_info,
    }


def finished(*items: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "id": JOB,
        "name": "n",
        "status": "FINISHED",
        "cost": {"credits": 14},
        "data": list(items),
    }
    body.update(extra)
    return body


def test_full_record_maps_work_personal_phone_and_statuses() -> None:
    """Work vs personal email with their statuses, phones with regions, cost, names."""
    item = record(
        most_probable_work_email={"email": "john@example.com", "status": "HIGH_PROBABILITY"},
        most_probable_personal_email={"email": "js@gmail.com", "status": "DELIVERABLE"},
        most_probable_phone={"number": "+33 6 12 34 56 78", "region": "FR"},
        work_emails=[
            {"email": "john@example.com", "status": "HIGH_PROBABILITY"},
            {"email": "j.snow@example.com", "status": "CATCH_ALL"},
        ],
        personal_emails=[{"email": "js@gmail.com", "status": "DELIVERABLE"}],
        phones=[
            {"number": "+1 555-123-4567", "region": "US"},
            {"number": "+33 6 12 34 56 78", "region": "FR"},
        ],
    )
    item["profile"] = {
        "first_name": "John",
        "social_profiles": {"professional_network": {"url": "https://www.linkedin.com/in/js"}},
        "skills": ["ignored"],
        "employment": {"current": {"company": {"headcount": 250}}},
    }
    result = v2_client(Script(answer(200, finished(item)))).get_result(JOB)
    assert result.status is EnrichmentStatus.FINISHED
    assert result.credits == 14
    contact = result.datas[0].contact
    assert (contact.firstname, contact.lastname, contact.domain) == ("John", "Snow", "example.com")
    assert contact.most_probable_email == "john@example.com"
    assert contact.most_probable_email_status == "HIGH_PROBABILITY"
    assert contact.most_probable_personal_email == "js@gmail.com"
    assert contact.most_probable_personal_email_status == "DELIVERABLE"
    assert [(e.email, e.status) for e in contact.emails] == [
        ("john@example.com", "HIGH_PROBABILITY"),
        ("j.snow@example.com", "CATCH_ALL"),
    ]
    assert contact.most_probable_phone == "+33 6 12 34 56 78"
    assert contact.phone_region == "FR"
    assert [s.url for s in contact.social_medias] == ["https://www.linkedin.com/in/js"]
    assert result.datas[0].custom == {"crm_id": "7", "source": "hubspot"}


def test_nothing_found_maps_to_none_and_empty_lists() -> None:
    """A record with no findings (keys absent, or lists empty) is a not-found contact."""
    bare = {"custom": {"crm_id": "1"}}
    empty = record(work_emails=[], personal_emails=[], phones=[])
    result = v2_client(Script(answer(200, finished(bare, empty)))).get_result(JOB)
    for item in result.datas:
        contact = item.contact
        assert contact.most_probable_email is None
        assert contact.most_probable_phone is None
        assert contact.emails == contact.phones == contact.personal_emails == []


def test_unknown_fields_are_ignored() -> None:
    """What v2 adds that crm-sync does not use is dropped without error."""
    item = record(most_probable_work_email={"email": "a@b.co", "status": "DELIVERABLE"}, fax="1")
    item["new_top_level"] = {"x": 1}
    body = finished(item, metadata={"credits": 0.25}, extra=[1, 2])
    result = v2_client(Script(answer(200, body))).get_result(JOB)
    assert result.datas[0].contact.most_probable_email == "a@b.co"


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (answer(200, {"id": JOB, "name": "n", "status": "IN_PROGRESS"}), "IN_PROGRESS"),
        (err(400, "error.enrichment.in_progress"), "IN_PROGRESS"),
        (answer(200, {"id": JOB, "status": "CREATED", "data": []}), "CREATED"),
        (answer(200, finished(status="CANCELED", data=[])), "CANCELED"),
        (answer(200, {"id": JOB, "status": "SOMETHING_NEW"}), "UNKNOWN"),
    ],
)
def test_status_variants(step: httpx.Response, status: str) -> None:
    """Running (200 or 400), created, canceled, and an unknown status name."""
    result = v2_client(Script(step)).get_result(JOB)
    assert result.status.value == status


def test_402_with_a_result_is_the_result() -> None:
    """CREDITS_INSUFFICIENT answered 402 with its body: the paid part is kept."""
    item = record(most_probable_work_email={"email": "a@b.co", "status": "DELIVERABLE"})
    body = finished(item, status="CREDITS_INSUFFICIENT")
    result = v2_client(Script(answer(402, body))).get_result(JOB)
    assert result.status is EnrichmentStatus.CREDITS_INSUFFICIENT
    assert result.datas[0].contact.most_probable_email == "a@b.co"


def test_402_without_a_result_is_out_of_credits() -> None:
    with pytest.raises(InsufficientCredits):
        v2_client(Script(err(402, "error.credits"))).get_result(JOB)


def test_404_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        v2_client(Script(err(404, "error.enrichment.not_found"))).get_result(JOB)


def test_a_malformed_item_is_marked_and_the_others_read() -> None:
    """An item whose contact_info is not an object becomes an unreadable item, alone."""
    good = record(most_probable_work_email={"email": "a@b.co", "status": "DELIVERABLE"})
    body = finished(good, {"custom": {"crm_id": "8"}, "contact_info": "oops"}, "not an object")
    internal = V2.to_internal(body)
    assert internal["datas"][1] == {"custom": {"crm_id": "8"}, "contact": UNREADABLE}
    assert internal["datas"][2]["contact"] == UNREADABLE
    assert internal["datas"][0]["contact"]["most_probable_email"] == "a@b.co"


def test_v2_error_codes_map_to_the_internal_names() -> None:
    """`first_name.empty` (v2) is `firstname.empty` inside, so the pipeline knows one name."""
    script = Script(err(400, "error.enrichment.first_name.empty", "First name cannot be empty"))
    request = BulkRequest(
        name="b", datas=[ContactRequest(firstname="a", lastname="b", domain="c.io")]
    )
    with pytest.raises(ValidationError) as refused:
        v2_client(script).submit(request)
    assert refused.value.code == "error.enrichment.firstname.empty"


def test_request_speaks_v2_names_and_asks_contact_events() -> None:
    """data, first_name, contact.work_emails, and webhook_events when configured."""
    script = Script(answer(200, {"enrichment_id": JOB}))
    client = v2_client(script, webhook_events=("contact_finished",))
    contact = ContactRequest(
        firstname="John",
        lastname="Snow",
        domain="example.com",
        enrich_fields=[FIELD_WORK_EMAIL, FIELD_PERSONAL_EMAIL, FIELD_PHONE],
        custom={"crm_id": "7"},
    )
    request = BulkRequest(name="b", webhook_url="https://hook.example/wh", datas=[contact])
    assert client.submit(request) == JOB
    sent = json.loads(script.requests[0].content)
    assert sent == {
        "name": "b",
        "webhook_url": "https://hook.example/wh",
        "webhook_events": {"contact_finished": "https://hook.example/wh/contact"},
        "data": [
            {
                "first_name": "John",
                "last_name": "Snow",
                "domain": "example.com",
                "enrich_fields": [
                    "contact.work_emails",
                    "contact.personal_emails",
                    "contact.phones",
                ],
                "custom": {"crm_id": "7"},
            }
        ],
    }


def test_no_contact_events_without_a_webhook() -> None:
    """Polling runs (`--once`) ask for no webhook of any kind."""
    script = Script(answer(200, {"enrichment_id": JOB}))
    client = v2_client(script, webhook_events=("contact_finished",))
    contact = ContactRequest(firstname="J", lastname="S", domain="example.com")
    client.submit(BulkRequest(name="b", datas=[contact]))
    sent = json.loads(script.requests[0].content)
    assert "webhook_events" not in sent
    assert "webhook_url" not in sent


def test_a_v1_answer_to_a_v2_client_is_refused_not_guessed() -> None:
    """The configured version decides: a `datas` body is an error naming the setting."""
    body = {"id": JOB, "status": "FINISHED", "datas": [{"custom": {}, "contact": {}}]}
    with pytest.raises(ServerError, match="api_version"):
        v2_client(Script(answer(200, body))).get_result(JOB)
