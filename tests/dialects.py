"""The two wire dialects as a fixture param, for the tests that concern the enrichment API.

A module opts in with `from tests.dialects import both_api_versions` (the fixture is named
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


__all__ = ["API_VERSIONS", "both_api_versions", "wire_item", "wire_result"]
