"""The Salesforce emulator's org: object schemas, record ids, seeding, and SOQL evaluation.

Evaluation follows SOQL's null rules: `f = null` / `f != null` test emptiness, `f != 'x'` also
matches records where `f` is null, `<`, `>`, `LIKE` and `IN` never match a null, and string
comparisons ignore case.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_sync.sandbox.people import COMPANIES, Person
from crm_sync.sandbox.salesforce.soql import (
    BoolOp,
    Comparison,
    Expr,
    InList,
    Like,
    Not,
    Query,
    SoqlError,
)

PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q"}
_COMMON = {
    "Id": "id",
    "FirstName": "string",
    "LastName": "string",
    "Email": "email",
    "Phone": "phone",
    "MobilePhone": "phone",
    "LinkedIn_URL__c": "url",
    "Enrichment_Opt_Out__c": "boolean",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
}
SCHEMAS: dict[str, dict[str, str]] = {
    "Account": {"Id": "id", "Name": "string", "Website": "url", "LastModifiedDate": "datetime"},
    "Contact": {**_COMMON, "AccountId": "reference"},
    "Lead": {**_COMMON, "Company": "string", "Website": "url"},
}
READ_ONLY = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"})
# relationship name -> (id field, target object), per object
RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "Contact": {"Account": ("AccountId", "Account")}
}
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
SEED_TIME = "2024-01-01T00:00:00.000+0000"


class QueryError(SoqlError):
    """A well-formed query naming what does not exist (INVALID_FIELD / INVALID_TYPE)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def with_checksum(id15: str) -> str:
    """The 18-character form of a 15-character Salesforce id (case-safe suffix)."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SUFFIX_CHARS[bits]
    return id15 + suffix


def normalize_id(record_id: str) -> str | None:
    """The 18-character id for a 15- or 18-character one; None when it is not shaped like an id."""
    if not _ID.match(record_id):
        return None
    return with_checksum(record_id[:15])


def make_id(sobject: str, index: int) -> str:
    return with_checksum(f"{PREFIXES[sobject]}5g{index:010d}")


def object_of(record_id: str) -> str | None:
    """The object type an id's key prefix names."""
    return next((o for o, p in PREFIXES.items() if record_id.startswith(p)), None)


def canonical_field(sobject: str, name: str) -> str:
    """The schema spelling of a field name (SOQL ignores case); QueryError if absent."""
    for field in SCHEMAS[sobject]:
        if field.lower() == name.lower():
            return field
    raise QueryError(f"No such column '{name}' on entity '{sobject}'.", "INVALID_FIELD")


def canonical_object(name: str) -> str:
    for sobject in SCHEMAS:
        if sobject.lower() == name.lower():
            return sobject
    raise QueryError(f"sObject type '{name}' is not supported.", "INVALID_TYPE")


def seed_records(contacts: list[Person], leads: list[Person]) -> dict[str, dict[str, Any]]:
    """The org's records by id: an Account per company, then Contacts and Leads from people."""
    records: dict[str, dict[str, Any]] = {}
    account_ids: dict[str, str] = {}
    for index, (name, domain) in enumerate(COMPANIES):
        account_id = make_id("Account", index)
        account_ids[name] = account_id
        records[account_id] = {
            "Id": account_id,
            "Name": name,
            "Website": f"https://www.{domain}",
            "LastModifiedDate": SEED_TIME,
        }
    for sobject, people in (("Contact", contacts), ("Lead", leads)):
        for person in people:
            record = _person_record(sobject, person)
            if sobject == "Contact":
                record["AccountId"] = account_ids.get(person.company or "")
            else:
                record["Company"] = person.company
                record["Website"] = person.domain
            records[record["Id"]] = record
    return records


def _person_record(sobject: str, person: Person) -> dict[str, Any]:
    """One Contact or Lead: the phone is the mobile, and for every other record the office line."""
    return {
        "Id": make_id(sobject, person.index),
        "FirstName": person.first_name,
        "LastName": person.last_name,
        "Email": person.email,
        "Phone": person.phone if person.index % 2 == 0 else None,
        "MobilePhone": person.phone,
        "LinkedIn_URL__c": person.linkedin_url,
        "Enrichment_Opt_Out__c": person.opted_out,
        "CreatedDate": SEED_TIME,
        "LastModifiedDate": SEED_TIME,
        "SystemModstamp": SEED_TIME,
    }


@dataclass(frozen=True, slots=True)
class _Path:
    """A resolved field reference: a field of the record, or of a related record."""

    relationship: str | None
    field: str


class QueryRunner:
    """Evaluates parsed queries against an org's records."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records

    def resolve(self, sobject: str, name: str) -> _Path:
        head, _, rest = name.partition(".")
        if not rest:
            return _Path(None, canonical_field(sobject, head))
        for rel, (_, target) in RELATIONSHIPS.get(sobject, {}).items():
            if rel.lower() == head.lower():
                if "." in rest:
                    raise QueryError(f"Didn't understand relationship '{name}'", "INVALID_FIELD")
                return _Path(rel, canonical_field(target, rest))
        raise QueryError(
            f"Didn't understand relationship '{head}' in field path '{name}'.", "INVALID_FIELD"
        )

    def related(self, sobject: str, record: dict[str, Any], rel: str) -> dict[str, Any] | None:
        id_field, _ = RELATIONSHIPS[sobject][rel]
        target_id = record.get(id_field)
        return self.records.get(target_id) if target_id else None

    def value(self, sobject: str, record: dict[str, Any], path: _Path) -> Any:
        if path.relationship is None:
            return record.get(path.field)
        parent = self.related(sobject, record, path.relationship)
        return parent.get(path.field) if parent else None

    def run(self, query: Query) -> tuple[str, list[dict[str, Any]]]:
        """(object name, result rows with attributes and nested relationships); QueryError."""
        sobject = canonical_object(query.sobject)
        paths = [self.resolve(sobject, name) for name in query.fields]
        match = self._compile(sobject, query.where)
        rows = [r for r in self._table(sobject) if match(r)]
        for order in reversed(query.order_by):
            rows = self._sorted(sobject, rows, order.field, order.descending, order.nulls_last)
        if query.limit is not None:
            rows = rows[: query.limit]
        return sobject, [self._row(sobject, r, paths) for r in rows]

    def _table(self, sobject: str) -> Iterable[dict[str, Any]]:
        return sorted(
            (r for i, r in self.records.items() if object_of(i) == sobject), key=lambda r: r["Id"]
        )

    def _sorted(
        self, sobject: str, rows: list[dict[str, Any]], name: str, desc: bool, last: bool | None
    ) -> list[dict[str, Any]]:
        path = self.resolve(sobject, name)
        nulls_last = desc if last is None else last
        present = [r for r in rows if self.value(sobject, r, path) is not None]
        empty = [r for r in rows if self.value(sobject, r, path) is None]
        present.sort(key=lambda r: _sort_key(self.value(sobject, r, path)), reverse=desc)
        return present + empty if nulls_last else empty + present

    def _row(self, sobject: str, record: dict[str, Any], paths: list[_Path]) -> dict[str, Any]:
        url = f"/services/data/v59.0/sobjects/{sobject}/{record['Id']}"
        row: dict[str, Any] = {"attributes": {"type": sobject, "url": url}}
        for path in paths:
            if path.relationship is None:
                row[path.field] = record.get(path.field)
                continue
            parent = self.related(sobject, record, path.relationship)
            if parent is None:
                row[path.relationship] = None
                continue
            _, target = RELATIONSHIPS[sobject][path.relationship]
            nested = row.get(path.relationship) or {
                "attributes": {
                    "type": target,
                    "url": f"/services/data/v59.0/sobjects/{target}/{parent['Id']}",
                }
            }
            nested[path.field] = parent.get(path.field)
            row[path.relationship] = nested
        return row

    def _compile(self, sobject: str, expr: Expr | None) -> Any:
        """A predicate over records; every field is resolved now, so errors come before any row."""
        if expr is None:
            return lambda record: True
        if isinstance(expr, BoolOp):
            parts = [self._compile(sobject, e) for e in expr.operands]
            if expr.op == "AND":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if isinstance(expr, Not):
            inner = self._compile(sobject, expr.operand)
            return lambda r: not inner(r)
        path = self.resolve(sobject, expr.field)
        kind = _field_type(sobject, path)
        test = _condition(expr, kind, path)
        return lambda r: test(self.value(sobject, r, path))


def _field_type(sobject: str, path: _Path) -> str:
    if path.relationship is None:
        return SCHEMAS[sobject][path.field]
    return SCHEMAS[RELATIONSHIPS[sobject][path.relationship][1]][path.field]


def _check_literal(kind: str, value: Any, path: _Path) -> None:
    if value is None:
        return
    if (kind == "datetime") != isinstance(value, datetime):
        raise SoqlError(
            f"value of filter criterion for field '{path.field}' must be of type {kind} "
            "and should not be enclosed in quotes"
        )
    if kind == "datetime":
        return
    is_bool = isinstance(value, bool)
    if (kind == "boolean") != is_bool or (not is_bool and isinstance(value, int | float)):
        raise SoqlError(
            f"value of filter criterion for field '{path.field}' must be of type {kind}"
        )


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_stamp(value: Any) -> datetime | None:
    """A stored datetime (`2024-01-01T00:00:00.000+0000`) as an aware datetime."""
    if isinstance(value, datetime) or value is None:
        return value
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")


def _literal(kind: str, value: Any) -> Any:
    """A literal as compared: ids in their 18-character form (SOQL accepts 15), strings lowered."""
    if kind in {"id", "reference"} and isinstance(value, str):
        value = normalize_id(value) or value
    return _norm(value)


def _condition(expr: Comparison | InList | Like, kind: str, path: _Path) -> Any:
    """A test of one field value, with SOQL's null rules."""
    if isinstance(expr, Like):
        if kind in {"boolean", "datetime"}:
            raise SoqlError(f"invalid operator on {kind} field '{path.field}': LIKE")
        regex = re.compile(_like_regex(expr.pattern), re.IGNORECASE | re.DOTALL)
        return lambda v: v is not None and regex.fullmatch(str(v)) is not None
    if isinstance(expr, InList):
        for item in expr.values:
            _check_literal(kind, item, path)
        wanted = {_literal(kind, v) for v in expr.values}
        if expr.negated:
            return lambda v: _norm(v) not in wanted
        return lambda v: v is not None and _norm(v) in wanted
    _check_literal(kind, expr.value, path)
    if kind == "datetime":
        test = _compare(expr.op, expr.value)
        return lambda v: test(parse_stamp(v))
    test = _compare(expr.op, _literal(kind, expr.value))
    return lambda v: test(_norm(v))


def _compare(op: str, target: Any) -> Callable[[Any], bool]:
    """`v <op> target` with SOQL's null rules (already-normalised values)."""
    if op == "=":
        return lambda v: v == target
    if op == "!=":
        return lambda v: v != target
    if target is None:
        raise SoqlError(f"invalid operator with null: {op}")
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }
    compare = ops[op]
    return lambda v: v is not None and compare(v, target)


def _like_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out)


def _sort_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
