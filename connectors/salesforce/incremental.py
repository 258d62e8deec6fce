"""Salesforce's incremental scan: candidates whose `SystemModstamp` is after a cursor.

`SystemModstamp` (not `LastModifiedDate`) moves on every change, including those made by
automation, and it is indexed, so the query stays selective on a large org. The query is the
full scan's (gaps, the user's filters, the opt-out) with `SystemModstamp > <cursor>`, ordered by
`SystemModstamp, Id` and paged by `nextRecordsUrl` (a server-side cursor: each record once).
Datetime literals are unquoted, in UTC, as SOQL wants them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.base import Change, ConnectorLimits, Contact, Selection


class QueryApi(Protocol):
    """The REST query calls the scan makes (`SalesforceApi`)."""

    def query(self, soql: str, headers: dict[str, str] | None = None) -> dict[str, Any]: ...

    def query_more(self, next_url: str) -> dict[str, Any]: ...


class Querier(Protocol):
    """What the scan needs of the Salesforce connector (which passes itself): no import back."""

    @property
    def limits(self) -> ConnectorLimits: ...

    @property
    def sobject(self) -> str: ...

    @property
    def api(self) -> QueryApi: ...

    def candidate_clauses(self, selection: Selection) -> list[str]: ...

    def select_fields(self) -> list[str]: ...

    def to_contact(self, record: dict[str, Any]) -> Contact: ...


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal: `2024-01-01T00:00:00.000Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_stamp(value: Any) -> datetime | None:
    """Salesforce's `2024-01-01T00:00:00.000+0000` as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None


def changed_query(connector: Querier, selection: Selection, since: datetime) -> str:
    """The SOQL of an incremental scan."""
    clauses = connector.candidate_clauses(selection)
    clauses.append(f"SystemModstamp > {soql_datetime(since)}")
    names = [*connector.select_fields(), "CreatedDate", "SystemModstamp"]
    fields = ", ".join(dict.fromkeys(names))
    where = " AND ".join(clauses)
    # names are checked against FIELD_NAME; the user's own fragment is theirs by design
    return (
        f"SELECT {fields} FROM {connector.sobject} WHERE {where} "  # noqa: S608
        "ORDER BY SystemModstamp, Id"
    )


def iter_changed(
    connector: Querier, selection: Selection, since: datetime
) -> Iterator[list[Change]]:
    """Pages of changed candidates, oldest `SystemModstamp` first."""
    headers = {}
    if selection.page_size:
        size = max(200, min(connector.limits.page_size, selection.page_size))
        headers["Sforce-Query-Options"] = f"batchSize={size}"
    page = connector.api.query(changed_query(connector, selection, since), headers)
    while True:
        changes = []
        for record in page.get("records", []):
            modified = parse_stamp(record.get("SystemModstamp"))
            if modified is None:
                continue
            created = parse_stamp(record.get("CreatedDate"))
            changes.append(Change(connector.to_contact(record), modified, created))
        if changes:
            yield changes
        next_url = page.get("nextRecordsUrl")
        if page.get("done", True) or not next_url:
            return
        page = connector.api.query_more(str(next_url))
