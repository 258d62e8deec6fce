"""The enrichment API's v1 wire shapes, in one place (a v2 dialect would sit beside this module).

Models are lenient where the API is loose: unknown fields are ignored, `cost` and `profile`
may be missing, and empty strings and empty lists mean "not found" (normalised to None / []).

A result is read per item: the envelope (`id`, `status`, `datas` as a list) must be readable,
but one item that is not (a phone as a JSON number, a list where a string belongs) lands in
`EnrichmentResult.malformed` with its reason, and the other items are read as usual. A dialect
(v1 here, v2 beside it) only has to produce `ResultItem`s and `MalformedItem`s.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from crm_sync.fields import ENRICH_FIELDS, FIELD_PHONE, FIELD_WORK_EMAIL

MAX_CONTACTS_PER_BULK = 100
MAX_CUSTOM_KEYS = 10
MAX_CUSTOM_VALUE_LENGTH = 100


class EnrichmentStatus(StrEnum):
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    CREDITS_INSUFFICIENT = "CREDITS_INSUFFICIENT"
    RATE_LIMIT = "RATE_LIMIT"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @classmethod
    def _missing_(cls, value: object) -> EnrichmentStatus:
        return cls.UNKNOWN


TERMINAL_STATUSES = frozenset(
    {EnrichmentStatus.FINISHED, EnrichmentStatus.CANCELED, EnrichmentStatus.CREDITS_INSUFFICIENT}
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class EmailFound(_Lenient):
    email: str
    status: str | None = None

    _none = field_validator("status", mode="before")(_empty_to_none)


class PhoneFound(_Lenient):
    number: str
    region: str | None = None

    _none = field_validator("region", mode="before")(_empty_to_none)


class SocialMedia(_Lenient):
    url: str | None = None
    type: str | None = None


class ContactResult(_Lenient):
    """What the API found for one contact; None and [] mean not found."""

    firstname: str | None = None
    lastname: str | None = None
    domain: str | None = None
    most_probable_email: str | None = None
    most_probable_email_status: str | None = None
    most_probable_personal_email: str | None = None
    most_probable_personal_email_status: str | None = None
    most_probable_phone: str | None = None
    emails: list[EmailFound] = Field(default_factory=list)
    personal_emails: list[EmailFound] = Field(default_factory=list)
    phones: list[PhoneFound] = Field(default_factory=list)
    social_medias: list[SocialMedia] = Field(default_factory=list)
    profile: dict[str, Any] | None = None

    _none = field_validator(
        "firstname",
        "lastname",
        "domain",
        "most_probable_email",
        "most_probable_email_status",
        "most_probable_personal_email",
        "most_probable_personal_email_status",
        "most_probable_phone",
        mode="before",
    )(_empty_to_none)

    @field_validator("emails", "personal_emails", "phones", "social_medias", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):  # drop entries with an empty value: they mean "not found"
            return [
                v
                for v in value
                if not (
                    isinstance(v, dict) and not (v.get("email") or v.get("number") or v.get("url"))
                )
            ]
        return value

    @property
    def phone_region(self) -> str | None:
        """The region the API gave for the most probable phone, as a parsing hint."""
        for phone in self.phones:
            if phone.number == self.most_probable_phone:
                return phone.region
        return self.phones[0].region if self.phones else None


class ResultItem(_Lenient):
    custom: dict[str, str] = Field(default_factory=dict)
    contact: ContactResult = Field(default_factory=ContactResult)

    @field_validator("custom", mode="before")
    @classmethod
    def _custom_strings(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @field_validator("contact", mode="before")
    @classmethod
    def _null_contact(cls, value: Any) -> Any:
        return {} if value is None else value


class Cost(_Lenient):
    credits: int | float | None = None


class MalformedItem(_Lenient):
    """One result item that could not be read: where it was, whose it seems to be, and why.

    `custom` is read best-effort (string values of a JSON object), so the contact can still be
    told; `raw` is the item exactly as received, so a stored result keeps it.
    """

    index: int
    custom: dict[str, str] = Field(default_factory=dict)
    reason: str
    raw: Any = None


def describe_errors(exc: PydanticValidationError, limit: int = 3) -> str:
    """A short, secret-free reason: the first errors' locations and messages (no input values)."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<item>'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)[:limit]
    ]
    return "; ".join(parts)[:300]


def loose_custom(raw: Any) -> dict[str, str]:
    """The `custom` object of an unreadable item, as far as it can be read."""
    custom = raw.get("custom") if isinstance(raw, dict) else None
    if not isinstance(custom, dict):
        return {}
    return {str(k): v for k, v in custom.items() if isinstance(v, str)}


def read_items(raw_items: list[Any]) -> tuple[list[ResultItem], list[MalformedItem]]:
    """Each raw item read on its own: the readable ones, and the others with their reason."""
    items: list[ResultItem] = []
    malformed: list[MalformedItem] = []
    for index, raw in enumerate(raw_items):
        if isinstance(raw, ResultItem):
            items.append(raw)
            continue
        if isinstance(raw, MalformedItem):
            malformed.append(raw)
            continue
        try:
            items.append(ResultItem.model_validate(raw))
        except PydanticValidationError as exc:
            reason = describe_errors(exc)
            malformed.append(
                MalformedItem(index=index, custom=loose_custom(raw), reason=reason, raw=raw)
            )
    return items, malformed


class EnrichmentResult(_Lenient):
    """The GET answer and the webhook body (they are the same), read per item.

    `datas` holds the items that could be read; `malformed` the others. A body whose envelope
    cannot be read (not an object, `datas` not a list) still fails validation as a whole.
    """

    id: str | None = None
    name: str | None = None
    status: EnrichmentStatus = EnrichmentStatus.UNKNOWN
    cost: Cost | None = None
    datas: list[ResultItem] = Field(default_factory=list)
    malformed: list[MalformedItem] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _per_item(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = dict(value)
        raw_items = value.get("datas")
        if raw_items is None:
            raw_items = []
        if isinstance(raw_items, list):
            items, malformed = read_items(raw_items)
            value["datas"] = items
            value["malformed"] = [*value.get("malformed", []), *malformed]
        cost = value.get("cost")
        if cost is not None and not _readable_cost(cost):
            value["cost"] = None  # a cost we cannot read is a cost not given: estimate it
        return value

    @property
    def credits(self) -> int | None:
        """Credits the API says it charged, or None when it did not say."""
        if self.cost is None or self.cost.credits is None:
            return None
        return int(self.cost.credits)

    def wire(self) -> dict[str, Any]:
        """The result as the API sent it, malformed items included (as received)."""
        body: dict[str, Any] = self.model_dump(
            mode="json", exclude_none=True, exclude={"malformed"}
        )
        body["datas"] = [*body.get("datas", []), *(m.raw for m in self.malformed)]
        return body


def _readable_cost(cost: Any) -> bool:
    if not isinstance(cost, dict):
        return False
    credits = cost.get("credits")
    return credits is None or (
        isinstance(credits, int | float) and not isinstance(credits, bool) and credits >= 0
    )


class ContactRequest(BaseModel):
    """One item of `datas` in the bulk POST. Built by us, so strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    firstname: str | None = None
    lastname: str | None = None
    domain: str | None = None
    company_name: str | None = None
    linkedin_url: str | None = None
    enrich_fields: list[str] = Field(default_factory=lambda: [FIELD_WORK_EMAIL, FIELD_PHONE])
    custom: dict[str, str] = Field(default_factory=dict)

    @field_validator("enrich_fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        for f in value:
            if f not in ENRICH_FIELDS:
                raise ValueError(f"unknown enrich field {f!r}")
        if not value:
            raise ValueError("enrich_fields must not be empty")
        return value

    @field_validator("custom")
    @classmethod
    def _custom_limits(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_CUSTOM_KEYS:
            raise ValueError(f"custom holds at most {MAX_CUSTOM_KEYS} keys")
        for k, v in value.items():
            if not isinstance(v, str):
                raise ValueError(f"custom[{k!r}] must be a string")
            if len(v) > MAX_CUSTOM_VALUE_LENGTH or len(k) > MAX_CUSTOM_VALUE_LENGTH:
                raise ValueError(
                    f"custom[{k!r}] is longer than {MAX_CUSTOM_VALUE_LENGTH} characters"
                )
        return value

    def wire(self) -> dict[str, Any]:
        """The JSON object as the API expects it: absent rather than null."""
        return self.model_dump(exclude_none=True)


class BulkRequest(BaseModel):
    """The body of `POST /contact/enrich/bulk`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    webhook_url: str | None = None
    datas: list[ContactRequest] = Field(min_length=1, max_length=MAX_CONTACTS_PER_BULK)

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "datas": [d.wire() for d in self.datas]}
        if self.webhook_url:
            body["webhook_url"] = self.webhook_url
        return body


class ApiError(_Lenient):
    """The API's error body: `{"code": "...", "message": "..."}`."""

    code: str = ""
    message: str = ""
