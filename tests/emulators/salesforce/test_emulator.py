"""The Salesforce emulator's wire behaviour, spoken to with plain requests over a socket."""

from __future__ import annotations

import re
from typing import Any

import requests

from tests.support.salesforce import Org

V = "/services/data/v59.0"


def call(org: Org, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or org.emulator.session_id}"}
    return requests.request(method, org.server.url + path, headers=headers, timeout=5, **kwargs)


def test_bad_bearer_is_401_with_usage_header(org: Org) -> None:
    """A wrong session answers INVALID_SESSION_ID and still carries Sforce-Limit-Info."""
    answer = call(org, "GET", f"{V}/limits", token="nope")
    assert answer.status_code == 401
    assert answer.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=0/100000"


def test_daily_limit_answers_403_once_spent(make_org: Any) -> None:
    """After `daily_limit` calls every call is REQUEST_LIMIT_EXCEEDED."""
    org = make_org(contacts=5, daily_limit=2)
    assert call(org, "GET", f"{V}/limits").json()["DailyApiRequests"]["Remaining"] == 1
    assert call(org, "GET", f"{V}/limits").status_code == 200
    answer = call(org, "GET", f"{V}/limits")
    assert answer.status_code == 403
    assert answer.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=2/2"


def test_query_pages_with_next_records_url(org: Org) -> None:
    """A query pages by `page_size`; the cursor path serves the rest, then `done`."""
    first = call(org, "GET", f"{V}/query/", params={"q": "SELECT Id FROM Contact"}).json()
    assert (first["totalSize"], len(first["records"]), first["done"]) == (180, 50, False)
    ids = [r["Id"] for r in first["records"]]
    page = first
    while not page["done"]:
        page = call(org, "GET", page["nextRecordsUrl"]).json()
        ids += [r["Id"] for r in page["records"]]
    assert ids == sorted(org.emulator.of_type("Contact"))
    assert org.emulator.calls["query_more"] == 3


def test_batch_size_header_is_honoured_within_bounds(make_org: Any) -> None:
    """`Sforce-Query-Options: batchSize` shrinks pages, but never below 200."""
    org = make_org(contacts=450)
    options = {"Sforce-Query-Options": "batchSize=10"}
    answer = requests.get(
        f"{org.server.url}{V}/query/",
        params={"q": "SELECT Id FROM Contact"},
        headers={"Authorization": f"Bearer {org.emulator.session_id}", **options},
        timeout=5,
    ).json()
    assert len(answer["records"]) == 200


def test_bad_query_is_400_malformed(org: Org) -> None:
    """A syntax error answers the MALFORMED_QUERY error list."""
    answer = call(org, "GET", f"{V}/query/", params={"q": "SELECT Id FROM Contact WHERE ("})
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_composite_all_or_none_rolls_back(org: Org) -> None:
    """With allOrNone true one bad record stops every record of the request."""
    good, bad = sorted(org.emulator.of_type("Contact"))[:2]
    records = [
        {"attributes": {"type": "Contact"}, "id": good, "Phone": "+33612345678"},
        {"attributes": {"type": "Contact"}, "id": bad, "Email": "not-an-email"},
    ]
    answer = call(
        org, "PATCH", f"{V}/composite/sobjects", json={"allOrNone": True, "records": records}
    )
    results = answer.json()
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert org.emulator.writes == []


def test_composite_refuses_more_than_200(org: Org) -> None:
    """An sObject collection holds at most 200 records."""
    record = {"attributes": {"type": "Contact"}, "id": next(iter(org.emulator.of_type("Contact")))}
    answer = call(
        org,
        "PATCH",
        f"{V}/composite/sobjects",
        json={"allOrNone": False, "records": [record] * 201},
    )
    assert answer.status_code == 400


def test_single_record_get_and_patch(org: Org) -> None:
    """GET returns the record; PATCH answers 204 and is recorded as a write; read-only refused."""
    record_id = sorted(org.emulator.of_type("Lead"))[0]
    path = f"{V}/sobjects/Lead/{record_id}"
    assert call(org, "GET", path).json()["Id"] == record_id
    assert call(org, "PATCH", path, json={"MobilePhone": "+14155550123"}).status_code == 204
    assert org.emulator.records[record_id]["MobilePhone"] == "+14155550123"
    assert org.emulator.writes[-1].fields == {"MobilePhone": "+14155550123"}
    refused = call(org, "PATCH", path, json={"LastModifiedDate": "2020-01-01"})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert call(org, "GET", f"{V}/sobjects/Contact/{record_id}").status_code == 404


def test_describe_lists_fields_and_404s_unknown_objects(org: Org) -> None:
    """Describe names each field with its type and whether it can be written."""
    fields = {
        f["name"]: f for f in call(org, "GET", f"{V}/sobjects/Contact/describe").json()["fields"]
    }
    assert fields["MobilePhone"]["updateable"] is True
    assert fields["Id"]["updateable"] is False
    assert fields["Enrichment_Opt_Out__c"]["type"] == "boolean"
    assert call(org, "GET", f"{V}/sobjects/Widget__c/describe").status_code == 404


def test_soap_login_answers_session_or_fault(org: Org) -> None:
    """The SOAP login returns the session and a server URL on the emulator, or INVALID_LOGIN."""
    envelope = (
        "<env:Envelope><env:Body><n1:login><n1:username>{u}</n1:username>"
        "<n1:password>{p}</n1:password></n1:login></env:Body></env:Envelope>"
    )
    url = f"{org.server.url}/services/Soap/u/59.0"
    ok = requests.post(
        url, envelope.format(u="sandbox@example.com", p="sandbox-passwordsandbox-token"), timeout=5
    )
    session = re.search(r"<sessionId>([^<]+)</sessionId>", ok.text)
    assert session is not None
    assert call(org, "GET", f"{V}/limits", token=session.group(1)).status_code == 200
    assert f"<serverUrl>{org.server.url}/services/Soap/u/59.0/" in ok.text
    bad = requests.post(url, envelope.format(u="sandbox@example.com", p="wrong"), timeout=5)
    assert bad.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in bad.text
    retired = requests.post(
        f"{org.server.url}/services/Soap/u/65.0",
        envelope.format(u="sandbox@example.com", p="sandbox-passwordsandbox-token"),
        timeout=5,
    )
    assert retired.status_code == 404  # SOAP login() is absent from API 65.0 and later
