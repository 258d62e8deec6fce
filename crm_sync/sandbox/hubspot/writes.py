"""What HubSpot does with a write: unknown properties, email conflicts and invalid values.

A batch update is refused whole (400) for an unknown or read-only property or a duplicate id,
and whole (409 CONFLICT) when an email in it belongs to another contact; an unknown id or an
invalid value fails only its own item (207). Validation errors name the property in `context`,
not the record: a client must work out which record failed (from the value, or by re-reading).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from crm_sync.sandbox.hubspot.store import EMAIL_PATTERN, READ_ONLY, ContactStore

Reply = tuple[int, dict[str, Any]]


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape, with a fresh UUID correlationId."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def standard_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """One item error of a 207 batch answer."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def _invalid(name: str, error: str, message: str) -> str:
    detail = [{"isValid": False, "message": message, "error": error, "name": name}]
    return f"Property values were not valid: {json.dumps(detail)}"


def _property_problem(store: ContactStore, changes: dict[str, str | None]) -> str | None:
    for name in changes:
        if name not in store.known:
            return _invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if name in READ_ONLY:
            return _invalid(name, "READ_ONLY_VALUE", f'"{name}" is a read only property')
    return None


def _value_problem(changes: dict[str, str | None]) -> str | None:
    email = changes.get("email")
    if email and not EMAIL_PATTERN.match(email):
        return _invalid("email", "INVALID_EMAIL", f"Email address {email} is invalid")
    return None


def _conflict(store: ContactStore, record_id: str, changes: dict[str, str | None]) -> Reply | None:
    email = changes.get("email")
    owner = store.email_owner(email) if email else None
    if owner is not None and owner != record_id:
        message = f"Contact already exists. Existing ID: {owner}"
        return 409, error_body("CONFLICT", message)
    return None


def validate_changes(
    store: ContactStore, record_id: str, changes: dict[str, str | None]
) -> Reply | None:
    """The error answer for a single-record PATCH, or None when it may be applied."""
    problem = _property_problem(store, changes) or _value_problem(changes)
    if problem is not None:
        return 400, error_body("VALIDATION_ERROR", problem)
    return _conflict(store, record_id, changes)


@dataclass
class BatchOutcome:
    """A batch update decided: a whole-batch refusal, or items to apply and items failed."""

    refusal: Reply | None = None
    accepted: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _parse_inputs(inputs: Any) -> list[tuple[str, dict[str, str | None]]]:
    if not isinstance(inputs, list):
        raise TypeError("inputs must be a list")
    parsed = []
    for item in inputs:
        props = item["properties"]
        if not isinstance(props, dict):
            raise TypeError("properties must be an object")
        parsed.append(
            (str(item["id"]), {k: None if v is None else str(v) for k, v in props.items()})
        )
    return parsed


def plan_batch_update(store: ContactStore, inputs: Any) -> BatchOutcome:
    """Decide a batch update before anything is written (HubSpot applies none on 400/409)."""
    parsed = _parse_inputs(inputs)
    ids = [record_id for record_id, _ in parsed]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        return BatchOutcome(
            refusal=(
                400,
                error_body("VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dupes}"),
            )
        )
    outcome = BatchOutcome()
    for record_id, changes in parsed:
        problem = _property_problem(store, changes)
        if problem is not None:
            return BatchOutcome(refusal=(400, error_body("VALIDATION_ERROR", problem)))
        conflict = _conflict(store, record_id, changes)
        if conflict is not None:
            return BatchOutcome(refusal=conflict)
        if not store.exists(record_id):
            message = "Object not found.  objectId are usually numeric."
            outcome.errors.append(standard_error("OBJECT_NOT_FOUND", message, {"ids": [record_id]}))
            continue
        invalid = _value_problem(changes)
        if invalid is not None:
            context = {"propertyName": sorted(changes)}
            outcome.errors.append(standard_error("VALIDATION_ERROR", invalid, context))
            continue
        outcome.accepted.append((record_id, changes))
    return outcome
