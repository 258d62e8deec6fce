"""The enrichment API's v1 wire shapes, in one place (a v2 dialect would sit beside this module).

Models are lenient where the API is loose: unknown fields are ignored, `cost` and `profile`
may be missing, and empty strings and empty lists mean "not found" (normalised to None / []).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CONTACTS_PER_BULK = 100
MAX_CUSTOM_KEYS = 10
MAX_CUSTOM_VALUE_LENGTH = 100
FIELD_WORK_EMAIL = "contact.emails"
FIELD_PERSONAL_EMAIL = "contact.personal_emails"
FIELD_PHONE = "contact.phones"
ENRICH_FIELDS = (FIELD_WORK_EMAIL, FIELD_PERSONAL_EMAIL, FIELD_PHONE)
CREDITS_PER_FIELD = {FIELD_WORK_EMAIL: 1, FIELD_PERSONAL_EMAIL: 3, FIELD_PHONE: 10}


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


class EnrichmentResult(_Lenient):
    """The GET answer and the webhook body (they are the same)."""

    id: str | None = None
    name: str | None = None
    status: EnrichmentStatus = EnrichmentStatus.UNKNOWN
    cost: Cost | None = None
    datas: list[ResultItem] = Field(default_factory=list)

    @field_validator("datas", mode="before")
    @classmethod
    def _null_datas(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def credits(self) -> int | None:
        """Credits the API says it charged, or None when it did not say."""
        if self.cost is None or self.cost.credits is None:
            return None
        return int(self.cost.credits)


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

    @property
    def worst_case_credits(self) -> int:
        return sum(CREDITS_PER_FIELD[f] for f in self.enrich_fields)


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
