"""Per-record validation of an emulated update, with Salesforce's own error codes.

Each problem is `{"statusCode", "message", "fields"}` as in an sObject collection result:
MALFORMED_ID, ENTITY_IS_DELETED, INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE,
INVALID_EMAIL_ADDRESS and DUPLICATES_DETECTED (another record of the object has that email).
"""

from __future__ import annotations

import re
from typing import Any

from crm_sync.sandbox.salesforce.data import READ_ONLY, SCHEMAS, normalize_id, object_of

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
Problem = dict[str, Any]


def _problem(code: str, message: str, *fields: str) -> Problem:
    return {"statusCode": code, "message": message, "fields": list(fields)}


def check_update(
    records: dict[str, dict[str, Any]], item: dict[str, Any]
) -> tuple[str, str, dict[str, Any], list[Problem]]:
    """(record id, object, fields to set, problems) for one record of an update request."""
    item = dict(item)
    attributes = item.pop("attributes", None) or {}
    raw_id = str(item.pop("id", None) or item.pop("Id", None) or "")
    sobject = str(attributes.get("type", ""))
    record_id = normalize_id(raw_id) or ""
    if sobject not in SCHEMAS:
        return raw_id, sobject, {}, [_problem("INVALID_TYPE", f"sObject type '{sobject}' unknown")]
    if not record_id or object_of(record_id) != sobject:
        return raw_id, sobject, {}, [_problem("MALFORMED_ID", f"malformed id {raw_id}", "Id")]
    if record_id not in records:
        return record_id, sobject, {}, [_problem("ENTITY_IS_DELETED", "entity is deleted")]
    problems = [p for name, value in item.items() if (p := _field_problem(sobject, name, value))]
    email = item.get("Email")
    if not problems and email and _duplicate_email(records, sobject, record_id, str(email)):
        problems.append(
            _problem(
                "DUPLICATES_DETECTED",
                "Use one of these records? You're creating a duplicate record.",
                "Email",
            )
        )
    return record_id, sobject, item, problems


def _field_problem(sobject: str, name: str, value: Any) -> Problem | None:
    schema = SCHEMAS[sobject]
    if name not in schema:
        return _problem("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
    if name in READ_ONLY:
        return _problem(
            "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}.", name
        )
    if schema[name] == "email" and value is not None and not _EMAIL.match(str(value)):
        return _problem("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", name)
    return None


def _duplicate_email(
    records: dict[str, dict[str, Any]], sobject: str, record_id: str, email: str
) -> bool:
    wanted = email.lower()
    return any(
        other_id != record_id
        and object_of(other_id) == sobject
        and str(other.get("Email") or "").lower() == wanted
        for other_id, other in records.items()
    )
