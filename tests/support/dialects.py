"""The two wire dialects as a fixture param, for the tests that concern the enrichment API.

A module opts in with `from tests.support.dialects import both_api_versions` (the fixture is named
`api_version`, and overrides the v1-only default of tests/conftest.py), so its tests run once
per dialect against the same seeded world.
"""

from __future__ import annotations

from typing import Any

import pytest

API_VERSIONS = ("v1", "v2")


@pytest.fixture(params=API_VERSIONS, name="api_version")
def both_api_versions(request: pytest.FixtureRequest) -> str:
    """Each test runs with `enrichment.api_version: v1`, then `v2`."""
    return str(request.param)


def wire_item(
    api_version: str,
    custom: dict[str, str],
    email: str | None,
    names: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """One result item as the API of `api_version` sends it: a work email found, or nothing;
    the person's `names` echoed (write-back writes only when they match the record)."""
    first, last = names
    if api_version == "v1":
        contact: dict[str, Any] = {"most_probable_email": email or "", "emails": []}
        contact |= {"firstname": first or "", "lastname": last or ""}
        if email:
            contact["most_probable_email_status"] = "DELIVERABLE"
            contact["emails"] = [{"email": email, "status": "DELIVERABLE"}]
        return {"custom": custom, "contact": contact}
    info: dict[str, Any] = {"work_emails": [], "personal_emails": [], "phones": []}
    if email:
        info["most_probable_work_email"] = {"email": email, "status": "DELIVERABLE"}
        info["work_emails"] = [{"email": email, "status": "DELIVERABLE"}]
    given = {k: v for k, v in (("first_name", first), ("last_name", last)) if v}
    return {"input": given, "custom": custom, "contact_info": info}


def wire_result(
    api_version: str, enrichment_id: str, items: list[dict[str, Any]], status: str = "FINISHED"
) -> dict[str, Any]:
    """A result object (GET answer or batch webhook) in `api_version`'s shape."""
    key = "datas" if api_version == "v1" else "data"
    return {"id": enrichment_id, "name": "crm-sync test", "status": status, key: items}


def to_wire(api_version: str, body: dict[str, Any]) -> dict[str, Any]:
    """An internal (v1-shaped) result body as the API of `api_version` sends it."""
    if api_version == "v1":
        return body
    from crm_sync.sandbox.enrichment.v2 import contact_info

    out = {k: v for k, v in body.items() if k != "datas"}
    out["data"] = [
        {
            "input": {
                k2: item["contact"][k1]
                for k1, k2 in (("firstname", "first_name"), ("lastname", "last_name"))
                if item.get("contact", {}).get(k1)
            },
            "custom": item.get("custom", {}),
            "contact_info": contact_info(item.get("contact", {})),
        }
        for item in body.get("datas", [])
    ]
    return out


__all__ = ["API_VERSIONS", "both_api_versions", "to_wire", "wire_item", "wire_result"]
