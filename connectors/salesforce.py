"""The Salesforce connector: SOQL finds gaps, sObject collections write, via simple-salesforce.

Library errors are translated here and nowhere else:

    SalesforceExpiredSession / failed login      -> AuthError(service="salesforce")
    SalesforceRefusedRequest REQUEST_LIMIT_...   -> QuotaExhausted (stop the source for the day)
    SalesforceMalformedRequest (MALFORMED_QUERY) -> ValidationError (a FatalError) naming the error
    connection errors and 5xx                    -> retried `max_retries` times, then ServerError

simple-salesforce always builds https:// URLs; for a plain-http `instance_url` or `login_url`
(the local emulator) a requests adapter sends those calls to http:// instead.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import Field, SecretStr, field_validator, model_validator
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorLimits,
    ConnectorSettings,
    Contact,
    FieldUpdate,
    Selection,
    WriteOutcome,
    WriteStatus,
)
from crm_sync.config import SourceConfig
from crm_sync.errors import (
    AuthError,
    ConfigError,
    CrmSyncError,
    FatalError,
    NotFoundError,
    QuotaExhausted,
    ServerError,
    ValidationError,
)
from crm_sync.logs import get_logger, register_secret

T = TypeVar("T")
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
QUOTA_MESSAGE = "Salesforce daily API request limit reached; source stopped until it refills"
COMPANY_FIELDS = {"Contact": ("Account.Name", "Account.Website"), "Lead": ("Company", "Website")}


class SalesforceSettings(ConnectorSettings):
    """The `settings:` block of a Salesforce source: a session, or a username/password login."""

    object: Literal["Contact", "Lead"] = "Contact"
    instance_url: str | None = None
    session_id: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    login_url: str | None = None  # overrides https://{domain}.salesforce.com (the emulator)
    domain: str = "login"
    api_version: str = Field("59.0", pattern=r"^\d{2,3}\.\d$")
    linkedin_field: str | None = Field(None, pattern=FIELD_PATH.pattern)
    verify_tls: bool = True
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(3, ge=0, le=10)

    @field_validator("instance_url", "login_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesforceSettings:
        if self.instance_url and self.session_id:
            return self
        if self.username and self.password and self.security_token:
            return self
        raise ValueError(
            "give either instance_url and session_id, or username, password and security_token"
        )


class PlainHttpAdapter(HTTPAdapter):
    """Sends requests for some https:// origins to other origins (plain-http emulators).

    It also applies a default timeout: simple-salesforce sends its SOAP login without one.
    """

    def __init__(self, rewrites: dict[str, str], timeout: float | None = None) -> None:
        super().__init__()
        self.rewrites = rewrites
        self.default_timeout = timeout

    def send(  # noqa: PLR0917 - the signature of requests' HTTPAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        request.url = rewrite_url(request.url or "", self.rewrites)
        timeout = self.default_timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


def rewrite_url(url: str, rewrites: Mapping[str, str]) -> str:
    """`url` with its origin replaced when that origin is one of `rewrites`' keys."""
    for source, target in rewrites.items():
        if url.lower().startswith(source.lower() + "/"):
            return target + url[len(source) :]
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def build_session(settings: SalesforceSettings) -> requests.Session:
    """A requests session for simple-salesforce, routed to plain-http hosts where configured."""
    session = requests.Session()
    session.verify = settings.verify_tls
    rewrites: dict[str, str] = {}
    for url in (settings.instance_url, settings.login_url):
        if url and url.startswith("http://"):
            origin = _origin(url)
            rewrites["https://" + origin.removeprefix("http://")] = origin
    if settings.login_url:
        rewrites[f"https://{settings.domain}.salesforce.com"] = _origin(settings.login_url)
    fallback = PlainHttpAdapter({}, settings.timeout_seconds)
    session.mount("https://", fallback)
    session.mount("http://", fallback)
    if rewrites:
        adapter = PlainHttpAdapter(rewrites, settings.timeout_seconds)
        for source in rewrites:
            session.mount(source + "/", adapter)  # the "/" keeps :80 from matching :8080
    return session


def _errors_of(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) of a REST error body `[{"message", "errorCode"}]`."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", ""


def translate(kind: str, exc: SalesforceError) -> CrmSyncError:
    """Our error for a simple-salesforce error; never quotes a header, key or session id."""
    code, message = _errors_of(exc)
    if isinstance(exc, SalesforceAuthenticationFailed):
        code = str(exc.code or "LOGIN_FAILED")
        return AuthError(
            f"Salesforce login failed ({code}): check username, password and security token",
            service="salesforce",
            code=code,
        )
    if isinstance(exc, SalesforceExpiredSession):
        return AuthError(
            f"Salesforce refused the session ({code or 'HTTP 401'}): renew the session id "
            "or log in with username, password and security token",
            service="salesforce",
            code=code,
        )
    if isinstance(exc, SalesforceRefusedRequest) and code == "REQUEST_LIMIT_EXCEEDED":
        return QuotaExhausted(QUOTA_MESSAGE, status=403, code=code)
    if isinstance(exc, SalesforceMalformedRequest):
        return ValidationError(
            f"Salesforce rejected the {kind}: {code}: {message}", status=400, code=code
        )
    if isinstance(exc, SalesforceResourceNotFound):
        return NotFoundError(f"Salesforce {kind}: not found ({code})", status=404, code=code)
    return FatalError(f"Salesforce {kind}: HTTP {exc.status} {code}: {message}", status=exc.status)


def _problems_in_fragment(text: str) -> list[str]:
    """Statement separators, open quotes and unbalanced parentheses outside string literals."""
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "'":
                quoted = False
            continue
        if ch == "'":
            quoted = True
        elif ch == ";":
            return ["filters: must be one SOQL condition; ';' is not allowed"]
        elif ch in "()":
            depth += 1 if ch == "(" else -1
            if depth < 0:
                return ["filters: unbalanced parentheses: ')' without '('"]
    if quoted:
        return ["filters: unbalanced quotes: a string literal is not closed"]
    if depth:
        return ["filters: unbalanced parentheses: '(' without ')'"]
    return []


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

    def __init__(
        self,
        source: SourceConfig,
        settings: ConnectorSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(source, settings)
        if not isinstance(settings, SalesforceSettings):
            raise ConfigError("settings: not a Salesforce settings block")
        self.sf_settings = settings
        self.sobject = settings.object
        self._sleep = sleep
        self._sf: Salesforce | None = None
        self._session: requests.Session | None = None
        self.api_usage: tuple[int, int] | None = None
        self.log = get_logger(source=source.name, connector=self.name)
        for secret in (settings.session_id, settings.password, settings.security_token):
            register_secret(secret.get_secret_value() if secret else None)
        self._check_names()

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
        return _problems_in_fragment(filters)

    # --- the client and its calls ------------------------------------------------------------
    def _client(self) -> Salesforce:
        if self._sf is None:
            if self.sf_settings.session_id and self.sf_settings.instance_url:
                self._sf = self._connect()  # no network call: the session is given
            else:
                self._sf = self._call("login", self._connect)
            register_secret(self._sf.session_id)
        return self._sf

    def _connect(self) -> Salesforce:
        s = self.sf_settings
        if self._session is None:
            self._session = build_session(s)
        if s.instance_url and s.session_id:
            return Salesforce(
                instance_url=s.instance_url,
                session_id=s.session_id.get_secret_value(),
                version=s.api_version,
                session=self._session,
            )
        # the settings validator guarantees all three
        assert s.username is not None
        assert s.password is not None
        assert s.security_token is not None
        return Salesforce(
            username=s.username,
            password=s.password.get_secret_value(),
            security_token=s.security_token.get_secret_value(),
            domain=s.domain,
            version=s.api_version,
            session=self._session,
        )

    def _call(self, kind: str, fn: Callable[[], T]) -> T:
        """Run one API call with bounded retries for connection errors and 5xx."""
        attempts = self.sf_settings.max_retries + 1
        for attempt in range(attempts):
            self.calls.add(kind)
            try:
                result = fn()
            except SalesforceError as exc:
                if exc.status < 500 or isinstance(exc, SalesforceAuthenticationFailed):
                    raise translate(kind, exc) from None
                error = ServerError(f"Salesforce {kind}: HTTP {exc.status}", status=exc.status)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = ServerError(f"Salesforce {kind}: {type(exc).__name__}")
            else:
                self._note_usage()
                return result
            if attempt + 1 < attempts:
                delay = min(30.0, 0.5 * 2**attempt)
                self.log.warning("salesforce.retry", kind=kind, attempt=attempt + 1, delay=delay)
                self._sleep(delay)
        raise error

    def _note_usage(self) -> None:
        usage = self._sf.api_usage.get("api-usage") if self._sf else None
        if usage is not None:
            self.api_usage = (usage.used, usage.total)
            self.log.debug("salesforce.api_usage", used=usage.used, total=usage.total)

    def _query(self, soql: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        sf = self._client()
        timeout = self.sf_settings.timeout_seconds
        call = functools.partial(sf.query, soql, headers=headers or {}, timeout=timeout)
        result: dict[str, Any] = self._call("query", call)
        return result

    def _query_more(self, next_url: str) -> dict[str, Any]:
        sf = self._client()
        timeout = self.sf_settings.timeout_seconds
        call = functools.partial(sf.query_more, next_url, identifier_is_url=True, timeout=timeout)
        result: dict[str, Any] = self._call("query_more", call)
        return result

    def _rest(self, kind: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        sf = self._client()
        timeout = self.sf_settings.timeout_seconds
        call = functools.partial(sf.restful, path, method=method, timeout=timeout, **kwargs)
        return self._call(kind, call)

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
        fields = ", ".join(self.select_fields())
        where = " AND ".join(clauses)
        # names are checked against FIELD_NAME; the user's own fragment is theirs by design
        return f"SELECT {fields} FROM {self.sobject} WHERE {where} ORDER BY Id"  # noqa: S608

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        """Pages of candidates via `nextRecordsUrl`, a server-side cursor: each record once."""
        soql = self.candidate_query(selection)
        headers = {}
        if selection.page_size:
            size = max(200, min(self.limits.page_size, selection.page_size))
            headers["Sforce-Query-Options"] = f"batchSize={size}"
        page = self._query(soql, headers)
        while True:
            contacts = [self.to_contact(record) for record in page.get("records", [])]
            self.log.debug("salesforce.page", records=len(contacts), total=page.get("totalSize"))
            if contacts:
                yield contacts
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self._query_more(str(next_url))

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
            page = self._query(soql)
            for record in page.get("records", []):
                contact = self.to_contact(record)
                for record_id in asked.get(contact.id[:15], [contact.id]):
                    found[record_id] = contact
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
            results = self._rest("write", "composite/sobjects", method="PATCH", json=body)
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
        reasons = [
            f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}".rstrip(": ")
            for e in result.get("errors") or []
        ]
        return WriteOutcome(record_id, WriteStatus.REJECTED, "; ".join(reasons) or "rejected")

    # --- check --------------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Session accepted, object and mapped fields present, daily API requests left."""
        try:
            limits = self._rest("limits", "limits")
        except CrmSyncError as exc:
            refused = isinstance(exc, AuthError)
            return [CheckResult("salesforce session", False, str(exc), credentials_refused=refused)]
        results = [CheckResult("salesforce session", True, "accepted")]
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

    def _check_fields(self) -> list[CheckResult]:
        try:
            describe = self._rest("describe", f"sobjects/{self.sobject}/describe")
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
        if self._session is not None:
            self._session.close()
        self._sf = None
        self._session = None
