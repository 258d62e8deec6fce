"""Contacts created through the HubSpot emulator's API, as HubSpot's spec says.

`POST /crm/v3/objects/contacts` (one `SimplePublicObjectInputForCreate`) answers 201 with the new
`SimplePublicObject`; `POST /crm/v3/objects/contacts/batch/create` (at most 100 inputs) answers
201 with a `BatchResponseSimplePublicObject`. The store sets `hs_object_id`, `createdate` and
`lastmodifieddate`, and search sees the record at once (unless the emulator's search lag says
otherwise). As for updates, an unknown or read-only property refuses the request with 400
VALIDATION_ERROR, an invalid email with 400, and an email another contact holds with 409
CONFLICT ("Contact already exists. Existing ID: n"): a batch is refused whole, nothing created.
The spec marks `associations` required; HubSpot accepts it missing, so does the emulator, but
a present one must be a list.
"""

from __future__ import annotations

from typing import Any

from crm_sync.sandbox.hubspot.store import ContactStore
from crm_sync.sandbox.hubspot.writes import Reply, error_body, validate_changes

MAX_BATCH = 100


def _properties(item: Any) -> dict[str, str | None]:
    """The `properties` of one create input; TypeError (answered 400) when malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
        raise TypeError("each input needs a `properties` object")
    associations = item.get("associations")
    if associations is not None and not isinstance(associations, list):
        raise TypeError("`associations` must be a list")
    return {k: None if v is None else str(v) for k, v in item["properties"].items()}


def _problem(store: ContactStore, props: dict[str, str | None]) -> Reply | None:
    """400/409 for properties HubSpot would refuse; the record id is not known yet."""
    return validate_changes(store, "", props)


def create_one(store: ContactStore, body: dict[str, Any]) -> Reply:
    """One contact created: 201 with the new object and every property it was given."""
    props = _properties(body)
    problem = _problem(store, props)
    if problem is not None:
        return problem
    record_id = store.add(props)
    names = [*props, "hs_object_id", "createdate", "lastmodifieddate"]
    return 201, store.object_json(record_id, list(dict.fromkeys(names)))


def create_batch(store: ContactStore, body: dict[str, Any], now: str) -> Reply:
    """Up to 100 contacts created together, or none (400/409 name the first problem)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise TypeError("`inputs` must be a list")
    if len(inputs) > MAX_BATCH:
        return 400, error_body("VALIDATION_ERROR", f"Batch size must be at most {MAX_BATCH}")
    parsed = [_properties(item) for item in inputs]
    seen: dict[str, int] = {}
    for index, props in enumerate(parsed):
        problem = _problem(store, props)
        if problem is not None:
            return problem
        email = (props.get("email") or "").strip().casefold()
        if email and email in seen:
            message = f"Duplicate email in batch input: inputs {seen[email]} and {index}"
            return 400, error_body("VALIDATION_ERROR", message)
        if email:
            seen[email] = index
    results = []
    for props in parsed:
        record_id = store.add(props)
        names = [*props, "hs_object_id", "createdate", "lastmodifieddate"]
        results.append(store.object_json(record_id, list(dict.fromkeys(names))))
    return 201, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
