"""What a Salesforce source configures, and the checks on its names and filters before any call.

Field names and the user's SOQL `filters` fragment end up inside queries, so they are checked
here, once, when the source is loaded: a broken name or fragment is a ConfigError at start-up
rather than a MALFORMED_QUERY in the middle of a run.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorSettings

FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")


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


def problems_in_fragment(text: str) -> list[str]:
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
