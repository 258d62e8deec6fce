"""Records created through the Salesforce emulator: `POST /sobjects/Contact` and `/sobjects/Lead`.

As Salesforce does: 201 `{"id", "success": true, "errors": []}`; 400 with a list of
`{"message", "errorCode", "fields"}` for an unknown field (INVALID_FIELD), a read-only one
(INVALID_FIELD_FOR_INSERT_UPDATE), a missing required field (REQUIRED_FIELD_MISSING: LastName,
and Company for a Lead), an invalid email or a duplicate (DUPLICATES_DETECTED). The new record
gets `CreatedDate`, `LastModifiedDate` and `SystemModstamp` set to now.
"""

from __future__ import annotations

import itertools
from typing import Any

from crm_sync.sandbox.salesforce.data import SCHEMAS, make_id
from crm_sync.sandbox.salesforce.writes import check_update

REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company")}
CREATABLE = frozenset(REQUIRED)
_next_index = itertools.count(900_000)  # far above seeded indexes, unique per process


def create_record(
    records: dict[str, dict[str, Any]], sobject: str, fields: Any, stamp: str
) -> tuple[int, Any]:
    """(status, body) for one create; the record is added to `records` on success."""
    if sobject not in CREATABLE:
        return 404, [
            {"message": f"sObject type '{sobject}' is not creatable", "errorCode": "NOT_FOUND"}
        ]
    if not isinstance(fields, dict):
        return 400, [
            {"message": "the request body is not an object", "errorCode": "JSON_PARSER_ERROR"}
        ]
    missing = [name for name in REQUIRED[sobject] if not str(fields.get(name) or "").strip()]
    if missing:
        message = f"Required fields are missing: [{', '.join(missing)}]"
        return 400, [{"message": message, "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}]
    record_id = make_id(sobject, next(_next_index))
    while record_id in records:
        record_id = make_id(sobject, next(_next_index))
    # The update checks apply to a create too; they look the record up, so stage an empty one.
    records[record_id] = {"Id": record_id}
    _, _, clean, problems = check_update(
        records, {"attributes": {"type": sobject}, "id": record_id, **fields}
    )
    if problems:
        del records[record_id]
        return 400, [
            {"message": p["message"], "errorCode": p["statusCode"], "fields": p["fields"]}
            for p in problems
        ]
    record: dict[str, Any] = dict.fromkeys(SCHEMAS[sobject])
    record.update(clean, Id=record_id, CreatedDate=stamp, LastModifiedDate=stamp)
    record["SystemModstamp"] = stamp
    records[record_id] = record
    return 201, {"id": record_id, "success": True, "errors": []}
