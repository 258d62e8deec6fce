"""Job life: status progression, in-progress styles, results, credits, 402 on a short balance."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

import httpx
import pytest

from crm_sync.sandbox.enrichment import EnrichmentEmulator
from crm_sync.sandbox.people import FIRST_NAMES, LAST_NAMES, Truth, truth_for_request
from tests.emulators.enrichment.conftest import bulk, contact, wait_until

Api = tuple[EnrichmentEmulator, httpx.Client]
DOMAIN = "acme-analytics.com"
BOTH = ["contact.emails", "contact.phones"]
ORDER = {"CREATED": 0, "IN_PROGRESS": 1, "FINISHED": 2}


def people_where(predicate: Callable[[Truth], bool], n: int) -> list[tuple[str, str]]:
    """The first `n` (first, last) names at DOMAIN whose ground truth satisfies `predicate`."""
    found = [
        (first, last)
        for first, last in product(FIRST_NAMES, LAST_NAMES)
        if predicate(truth_for_request(first, last, DOMAIN, None))
    ]
    assert len(found) >= n
    return found[:n]


def full(t: Truth) -> bool:
    return t.email_status == "DELIVERABLE" and bool(t.phone)


def nothing(t: Truth) -> bool:
    return t.work_email is None and t.phone is None and t.personal_email is None


def submit(client: httpx.Client, *items: dict[str, Any], **extra: Any) -> str:
    response = client.post("/contact/enrich/bulk", json=bulk(*items, **extra))
    assert response.status_code == 200
    return str(response.json()["enrichment_id"])


def get(client: httpx.Client, enrichment_id: str, **params: str) -> httpx.Response:
    return client.get(f"/contact/enrich/bulk/{enrichment_id}", params=params)


def test_status_progresses_to_finished_on_its_own(make_api) -> None:
    """Polling sees CREATED/IN_PROGRESS in order, then FINISHED with data, without finish_all."""
    _, client = make_api(completion_delay=0.6, in_progress_style="200", rate_limit_calls=100_000)
    enrichment_id = submit(client, contact(custom={"crm_id": "1"}))
    seen: list[str] = []

    def finished() -> bool:
        seen.append(get(client, enrichment_id).json()["status"])
        return seen[-1] == "FINISHED"

    wait_until(finished)
    assert seen[0] in {"CREATED", "IN_PROGRESS"}
    assert [ORDER[s] for s in seen] == sorted(ORDER[s] for s in seen)
    assert get(client, enrichment_id).json()["datas"][0]["custom"] == {"crm_id": "1"}


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("200", [200, 200, 200, 200]),
        ("400", [400, 400, 400, 400]),
        ("alternate", [200, 400, 200, 400]),
    ],
)
def test_in_progress_styles(make_api, style: str, expected: list[int]) -> None:
    """While running, GET answers 200 without datas, or 400 error.enrichment.in_progress."""
    _, client = make_api(completion_delay=3600, in_progress_style=style)
    enrichment_id = submit(client)
    responses = [get(client, enrichment_id) for _ in range(4)]
    assert [r.status_code for r in responses] == expected
    for response in responses:
        body = response.json()
        if response.status_code == 200:
            assert set(body) == {"id", "name", "status"}
            assert body["status"] in {"CREATED", "IN_PROGRESS"}
        else:
            assert body["code"] == "error.enrichment.in_progress"


def test_force_results_while_running_returns_empty_contacts(api: Api) -> None:
    """forceResults=true answers 200 with every contact echoed and nothing found or charged yet."""
    emulator, client = api
    enrichment_id = submit(client, contact(custom={"crm_id": "7"}))
    body = get(client, enrichment_id, forceResults="true").json()
    assert body["status"] in {"CREATED", "IN_PROGRESS"}
    assert body["datas"][0]["custom"] == {"crm_id": "7"}
    assert body["datas"][0]["contact"]["emails"] == []
    assert emulator.credits_charged == 0


def test_finish_all_completes_pending_jobs(api: Api) -> None:
    """finish_all turns every pending job FINISHED and the GET body equals result_body."""
    emulator, client = api
    ids = [submit(client), submit(client, contact(first="Grace", last="Hopper"))]
    emulator.finish_all()
    for enrichment_id in ids:
        response = get(client, enrichment_id)
        assert response.status_code == 200
        assert response.json()["status"] == "FINISHED"
        assert response.json() == emulator.result_body(enrichment_id)


def test_result_matches_ground_truth_and_costs(api: Api) -> None:
    """A fully found contact returns the truth's email and phone and costs 1 + 10 credits."""
    emulator, client = api
    ((first, last),) = people_where(full, 1)
    truth = truth_for_request(first, last, DOMAIN, None)
    enrichment_id = submit(client, contact(first, last, enrich_fields=BOTH, custom={"crm_id": "9"}))
    emulator.finish_all()
    body = get(client, enrichment_id).json()
    found = body["datas"][0]["contact"]
    assert found["most_probable_email"] == truth.work_email
    assert found["most_probable_email_status"] == "DELIVERABLE"
    assert found["emails"] == [{"email": truth.work_email, "status": "DELIVERABLE"}]
    assert found["most_probable_phone"] == truth.phone
    assert found["phones"] == [{"number": truth.phone, "region": truth.phone_region}]
    assert found["most_probable_personal_email"] == ""
    assert body["cost"] == {"credits": 11}
    assert emulator.credits_charged == 11
    assert emulator.balance == 1_000_000 - 11


def test_only_asked_fields_are_returned_and_charged(api: Api) -> None:
    """A contact asked for its phone only gets no email, and pays only for the phone."""
    emulator, client = api
    ((first, last),) = people_where(full, 1)
    enrichment_id = submit(client, contact(first, last, enrich_fields=["contact.phones"]))
    emulator.finish_all()
    found = emulator.result_body(enrichment_id)["datas"][0]["contact"]
    assert found["emails"] == []
    assert found["most_probable_email"] == ""
    assert found["phones"]
    assert emulator.credits_charged == 10


def test_personal_email_costs_three(api: Api) -> None:
    """A personal email found costs 3 credits and fills the personal fields."""
    emulator, client = api
    ((first, last),) = people_where(lambda t: t.personal_email is not None, 1)
    fields = ["contact.personal_emails"]
    enrichment_id = submit(client, contact(first, last, enrich_fields=fields))
    emulator.finish_all()
    found = emulator.result_body(enrichment_id)["datas"][0]["contact"]
    assert (
        found["most_probable_personal_email"]
        == truth_for_request(first, last, DOMAIN, None).personal_email
    )
    assert emulator.credits_charged == 3


def test_invalid_email_is_returned_but_free(api: Api) -> None:
    """An INVALID work email comes back with its status and costs nothing."""
    emulator, client = api
    ((first, last),) = people_where(lambda t: t.email_status == "INVALID", 1)
    enrichment_id = submit(client, contact(first, last, enrich_fields=["contact.emails"]))
    emulator.finish_all()
    found = emulator.result_body(enrichment_id)["datas"][0]["contact"]
    assert found["most_probable_email_status"] == "INVALID"
    assert emulator.credits_charged == 0


def test_nothing_found_is_empty_and_free(api: Api) -> None:
    """A contact with nothing found has "" scalars and [] lists, no profile, and costs 0."""
    emulator, client = api
    ((first, last),) = people_where(nothing, 1)
    fields = ["contact.emails", "contact.personal_emails", "contact.phones"]
    enrichment_id = submit(client, contact(first, last, enrich_fields=fields))
    emulator.finish_all()
    found = emulator.result_body(enrichment_id)["datas"][0]["contact"]
    for key in ("most_probable_email", "most_probable_email_status", "most_probable_phone"):
        assert found[key] == ""
    for key in ("emails", "personal_emails", "phones", "social_medias"):
        assert found[key] == []
    assert "profile" not in found
    assert emulator.credits_charged == 0


def test_profile_is_present_for_some_contacts_only(api: Api) -> None:
    """Some found contacts carry a profile and others omit the key, as the real API does."""
    emulator, client = api
    names = people_where(full, 30)
    enrichment_id = submit(client, *[contact(f, last) for f, last in names])
    emulator.finish_all()
    with_profile = ["profile" in d["contact"] for d in emulator.result_body(enrichment_id)["datas"]]
    assert any(with_profile)
    assert not all(with_profile)


def test_short_balance_stops_the_job_with_402(api: Api) -> None:
    """When credits run out, earlier contacts keep their data, later ones are empty, GET is 402."""
    emulator, client = api
    emulator.balance = 25
    names = people_where(full, 3)
    items = [
        contact(f, last, enrich_fields=BOTH, custom={"crm_id": str(i)})
        for i, (f, last) in enumerate(names)
    ]
    enrichment_id = submit(client, *items)
    emulator.finish_all()
    response = get(client, enrichment_id)
    assert response.status_code == 402
    body = response.json()
    assert body["status"] == "CREDITS_INSUFFICIENT"
    assert body["cost"] == {"credits": 22}
    assert [d["custom"]["crm_id"] for d in body["datas"]] == ["0", "1", "2"]
    assert [bool(d["contact"]["phones"]) for d in body["datas"]] == [True, True, False]
    assert emulator.balance == 3
    assert emulator.credits_charged == 22
    assert body == emulator.result_body(enrichment_id)


def test_results_are_deterministic(make_api) -> None:
    """The same request to two fresh emulators gives the same datas and cost."""
    items = [contact(f, last, enrich_fields=BOTH) for f, last in people_where(lambda t: True, 20)]
    bodies = []
    for _ in range(2):
        emulator, client = make_api(completion_delay=3600)
        enrichment_id = submit(client, *items)
        emulator.finish_all()
        body = emulator.result_body(enrichment_id)
        bodies.append((body["datas"], body["cost"]))
    assert bodies[0] == bodies[1]


def test_cancel_ends_the_job_without_charge(api: Api) -> None:
    """A canceled job is terminal, returns empty contacts and charges nothing."""
    emulator, client = api
    enrichment_id = submit(client, contact(custom={"crm_id": "c"}))
    emulator.cancel(enrichment_id)
    body = get(client, enrichment_id).json()
    assert body["status"] == "CANCELED"
    assert body["datas"][0]["contact"]["emails"] == []
    assert emulator.credits_charged == 0
