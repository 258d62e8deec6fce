"""The Salesforce connector: SOQL finds gaps, sObject collections write, via simple-salesforce.

The connector decides what to ask and what the answers mean. Its settings and the checks on
user-given names live in `settings.py`; the HTTP session, retries and the translation of
library errors into ours live in `http.py`. The package re-exports the public names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from connectors.base import (
    INCREMENTAL_SCAN,
    Change,
    CheckResult,
    Connector,
    ConnectorLimits,
    ConnectorSettings,
    Contact,
    FieldUpdate,
    Selection,
    SourceSpec,
    WriteOutcome,
    WriteStatus,
)
from connectors.salesforce.http import (
    SalesforceApi,
)
from connectors.salesforce.incremental import iter_changed
from connectors.salesforce.settings import (
    FIELD_NAME,
    SalesforceSettings,
    problems_in_fragment,
)
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, ConfigError, CrmSyncError, FatalError
from crm_sync.logs import get_logger

__all__ = ["COMPANY_FIELDS", "RECORD_ID", "SalesforceConnector"]

T = TypeVar("T")
#: Per-record error codes that refuse the field itself, not the record: hold, do not reject.
FIELD_ERROR_CODES = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
COMPANY_FIELDS = {"Contact": ("Account.Name", "Account.Website"), "Lead": ("Company", "Website")}


def _text(value: Any) -> str | None:
    """CRM value as the engine wants it: a non-empty string, or None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _get_path(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceConnector(Connector):
    """Contacts or Leads of one Salesforce org."""

    name = "salesforce"
    settings_model = SalesforceSettings
    limits = ConnectorLimits(page_size=2000, read_batch_size=200, write_batch_size=200)
    capabilities = frozenset({INCREMENTAL_SCAN})

    def __init__(
        self,
        source: SourceSpec,
        settings: ConnectorSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(source, settings, clock=clock)
        if not isinstance(settings, SalesforceSettings):
            raise ConfigError("settings: not a Salesforce settings block")
        self.sf_settings = settings
        self.sobject = settings.object
        self.log = get_logger(source=source.name, connector=self.name)
        self.api = SalesforceApi(settings, self.calls, self.log, clock)
        self._check_names()

    def __repr__(self) -> str:
        return f"SalesforceConnector(source={self.source.name!r}, auth={self.api.auth.flow!r})"

    def _check_names(self) -> None:
        problems = [
            f"fields.{logical}: {crm!r} is not a Salesforce field name"
            for logical, crm in self.field_map.items()
            if not FIELD_NAME.match(crm)
        ]
        opt_out = self.source.opt_out_field
        if opt_out and not FIELD_NAME.match(opt_out):
            problems.append(f"opt_out_field: {opt_out!r} is not a Salesforce field name")
        if problems:
            raise ConfigError("invalid Salesforce field names", problems)

    @classmethod
    def validate_filters(cls, filters: Any) -> list[str]:
        """A SOQL WHERE fragment (or nothing); obvious breakage is reported before any call."""
        if filters is None:
            return []
        if not isinstance(filters, str) or not filters.strip():
            return ["filters: must be a SOQL WHERE condition, for example \"LeadSource = 'Web'\""]
        return problems_in_fragment(filters)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, total) daily API requests, from the last answer's `Sforce-Limit-Info`."""
        return self.api.api_usage

    # --- reading ------------------------------------------------------------------------------
    def select_fields(self) -> list[str]:
        """Fields every query asks for, without repeats."""
        names = ["Id", "FirstName", "LastName", *self.field_map.values()]
        names += COMPANY_FIELDS[self.sobject]
        if self.sf_settings.linkedin_field:
            names.append(self.sf_settings.linkedin_field)
        return list(dict.fromkeys(names))

    def candidate_query(self, selection: Selection) -> str:
        """The SOQL for records missing any wanted field, within filters, not opted out."""
        clauses = self.candidate_clauses(selection)
        if selection.after_id and RECORD_ID.match(selection.after_id):
            clauses.append(f"Id > {_quote(selection.after_id)}")  # resume a bounded scan
        fields = ", ".join(self.select_fields())
        where = " AND ".join(clauses)
        # names are checked against FIELD_NAME; the user's own fragment is theirs by design
        return f"SELECT {fields} FROM {self.sobject} WHERE {where} ORDER BY Id"  # noqa: S608

    def candidate_clauses(self, selection: Selection) -> list[str]:
        """The WHERE conditions (ANDed) of a candidate query: gaps, filters, opt-out."""
        wanted = sorted(selection.wanted & set(self.field_map))
        if not wanted:
            raise ConfigError("selection: no wanted field is in the source's field map")
        gaps = " OR ".join(f"{self.field_map[name]} = null" for name in wanted)
        clauses = [f"({gaps})"]
        if selection.filters:
            problems = self.validate_filters(selection.filters)
            if problems:
                raise ConfigError(problems[0], problems)
            clauses.append(f"({selection.filters})")
        if selection.opt_out_field:
            if not FIELD_NAME.match(selection.opt_out_field):
                raise ConfigError(f"opt_out_field: {selection.opt_out_field!r} is not a field name")
            clauses.append(f"{selection.opt_out_field} != true")  # null counts as not opted out
        return clauses

    def iter_changed(self, selection: Selection, since: datetime) -> Iterator[list[Change]]:
        """Candidates with `SystemModstamp > since`, oldest first (`incremental.py`)."""
        return iter_changed(self, selection, since)

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        """Pages of candidates via `nextRecordsUrl`, a server-side cursor: each record once."""
        soql = self.candidate_query(selection)
        headers = {}
        if selection.page_size:
            size = max(200, min(self.limits.page_size, selection.page_size))
            headers["Sforce-Query-Options"] = f"batchSize={size}"
        page = self.api.query(soql, headers)
        while True:
            contacts = [self.to_contact(record) for record in page.get("records", [])]
            self.log.debug("salesforce.page", records=len(contacts), total=page.get("totalSize"))
            if contacts:
                yield contacts
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.api.query_more(str(next_url))

    def to_contact(self, record: dict[str, Any]) -> Contact:
        """A query row as a Contact; Account-less Contacts have no company."""
        company_field, domain_field = COMPANY_FIELDS[self.sobject]
        linkedin = self.sf_settings.linkedin_field
        email, phone = self.field_map.get("email"), self.field_map.get("phone")
        return Contact(
            id=str(record["Id"]),
            first_name=_text(record.get("FirstName")),
            last_name=_text(record.get("LastName")),
            company=_text(_get_path(record, company_field)),
            domain=_text(_get_path(record, domain_field)),
            linkedin_url=_text(_get_path(record, linkedin)) if linkedin else None,
            email=_text(record.get(email)) if email else None,
            phone=_text(record.get(phone)) if phone else None,
        )

    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        """Current values by id; malformed and vanished ids are absent. Keys are the ids given."""
        valid = [i for i in dict.fromkeys(ids) if RECORD_ID.match(i)]
        if len(valid) < len(set(ids)):
            self.log.warning("salesforce.read.malformed_ids", count=len(set(ids)) - len(valid))
        asked: dict[str, list[str]] = {}
        for record_id in valid:
            asked.setdefault(record_id[:15], []).append(record_id)
        found: dict[str, Contact] = {}
        fields = ", ".join(self.select_fields())
        for chunk in _chunks(valid, self.limits.read_batch_size):
            in_list = ", ".join(_quote(i) for i in chunk)
            soql = f"SELECT {fields} FROM {self.sobject} WHERE Id IN ({in_list})"  # noqa: S608 - ids checked and quoted
            page = self.api.query(soql)
            while True:  # Salesforce may page even a 200-id answer (smaller batchSize, big rows)
                for record in page.get("records", []):
                    contact = self.to_contact(record)
                    for record_id in asked.get(contact.id[:15], [contact.id]):
                        found[record_id] = contact
                next_url = page.get("nextRecordsUrl")
                if page.get("done", True) or not next_url:
                    break
                page = self.api.query_more(next_url)
        return found

    # --- writing ------------------------------------------------------------------------------
    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """sObject collection updates (allOrNone false); one outcome per update, in order."""
        outcomes: list[WriteOutcome] = []
        for chunk in _chunks(updates, self.limits.write_batch_size):
            outcomes.extend(self._write_chunk(chunk))
        return outcomes

    def _write_chunk(self, chunk: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome | None] = []
        records: list[dict[str, Any]] = []
        for update in chunk:
            problem = self._local_problem(update)
            outcomes.append(
                WriteOutcome(update.record_id, WriteStatus.REJECTED, problem) if problem else None
            )
            if not problem:
                record = {"attributes": {"type": self.sobject}, "id": update.record_id}
                record.update({self.field_map[k]: v for k, v in update.values.items()})
                records.append(record)
        if records:
            body = {"allOrNone": False, "records": records}
            results = self.api.rest("write", "composite/sobjects", method="PATCH", json=body)
            if not isinstance(results, list) or len(results) != len(records):
                raise FatalError("Salesforce write: the answer does not have one result a record")
            answers = iter(results)
            outcomes = [
                outcome or self._outcome(update.record_id, next(answers))
                for outcome, update in zip(outcomes, chunk, strict=True)
            ]
        written = sum(1 for o in outcomes if o and o.status is WriteStatus.WRITTEN)
        self.log.info("salesforce.write", records=len(chunk), written=written)
        return [o for o in outcomes if o is not None]

    def _local_problem(self, update: FieldUpdate) -> str:
        if not RECORD_ID.match(update.record_id):
            return "MALFORMED_ID: not a Salesforce record id"
        unmapped = sorted(set(update.values) - set(self.field_map))
        if unmapped:
            return f"no Salesforce field is mapped for {', '.join(unmapped)}"
        return ""

    @staticmethod
    def _outcome(record_id: str, result: dict[str, Any]) -> WriteOutcome:
        if result.get("success"):
            return WriteOutcome(record_id, WriteStatus.WRITTEN)
        errors = result.get("errors") or []
        reasons = [
            f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}".rstrip(": ") for e in errors
        ]
        reason = "; ".join(reasons) or "rejected"
        if any(e.get("statusCode") in FIELD_ERROR_CODES for e in errors):
            return WriteOutcome(record_id, WriteStatus.FIELD_REFUSED, reason)
        return WriteOutcome(record_id, WriteStatus.REJECTED, reason)

    # --- check --------------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Session accepted, object and mapped fields present, daily API requests left."""
        flow = self.api.auth.flow
        try:
            limits = self.api.rest("limits", "limits")
            identity = self.api.identity()
        except CrmSyncError as exc:
            refused = isinstance(exc, AuthError)
            return [CheckResult("salesforce session", False, str(exc), credentials_refused=refused)]
        results = [CheckResult("salesforce session", True, f"accepted; auth {flow} as {identity}")]
        for warning in self.api.auth.warnings():
            results.append(CheckResult("salesforce auth", True, f"warning: {warning}"))
        results.extend(self._check_fields())
        daily = (limits or {}).get("DailyApiRequests", {})
        remaining, total = daily.get("Remaining"), daily.get("Max")
        results.append(
            CheckResult(
                "salesforce api usage",
                bool(remaining),
                f"{remaining} of {total} daily API requests left",
            )
        )
        return results

    def check_fields(self) -> list[str]:
        """Each mapped field exists on the object and is `updateable` (one describe call)."""
        describe = self.api.rest("describe", f"sobjects/{self.sobject}/describe")
        fields = {f["name"].lower(): f for f in (describe or {}).get("fields", [])}
        problems = []
        for logical, crm in self.field_map.items():
            info = fields.get(crm.lower())
            if info is None:
                problems.append(f"fields.{logical}: Salesforce field {self.sobject}.{crm} missing")
            elif not info.get("updateable", False):
                problems.append(
                    f"fields.{logical}: Salesforce field {self.sobject}.{crm} is not updateable"
                )
        return problems

    def _check_fields(self) -> list[CheckResult]:
        try:
            describe = self.api.rest("describe", f"sobjects/{self.sobject}/describe")
        except CrmSyncError as exc:
            return [CheckResult(f"salesforce object {self.sobject}", False, str(exc))]
        fields = {f["name"]: f for f in (describe or {}).get("fields", [])}
        results = [CheckResult(f"salesforce object {self.sobject}", True, "exists")]
        wanted = dict(self.field_map)
        if self.source.opt_out_field:
            wanted["opt_out_field"] = self.source.opt_out_field
        if self.sf_settings.linkedin_field and "." not in self.sf_settings.linkedin_field:
            wanted["linkedin_field"] = self.sf_settings.linkedin_field
        for role, crm in wanted.items():
            info = fields.get(crm)
            if info is None:
                results.append(CheckResult(f"field {role}", False, f"{self.sobject}.{crm} missing"))
            elif role in self.field_map and not info.get("updateable", False):
                results.append(CheckResult(f"field {role}", False, f"{crm} is not updateable"))
            else:
                results.append(CheckResult(f"field {role}", True, f"{self.sobject}.{crm}"))
        return results

    def close(self) -> None:
        """Release the HTTP session."""
        self.api.close()
