"""What a Salesforce source configures, and the checks on its names and filters before any call.

`auth` names how the connector logs in (`jwt`, `client_credentials`, `password`, `session`). When
it is left out it is inferred from the keys that are set; keys of two flows at once are a config
error naming them, so a secret is never silently unused.

Field names and the user's SOQL `filters` fragment end up inside queries, so they are checked
here, once, when the source is loaded: a broken name or fragment is a ConfigError at start-up
rather than a MALFORMED_QUERY in the middle of a run.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorSettings

FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")


AuthMode = Literal["jwt", "client_credentials", "password", "session"]
# Keys that only one flow uses: the flow is inferred from them, and mixing them is ambiguous.
FLOW_KEYS: dict[str, tuple[str, ...]] = {
    "jwt": ("private_key", "private_key_file"),
    "client_credentials": ("consumer_secret",),
    "password": ("password", "security_token"),
    "session": ("session_id", "instance_url"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "jwt": ("consumer_key", "username"),
    "client_credentials": ("consumer_key", "consumer_secret", "login_url"),
    "password": ("username", "password", "security_token"),
    "session": ("instance_url", "session_id"),
}
USED_BY: dict[str, set[str]] = {
    "jwt": {"consumer_key", "username", "private_key", "private_key_file", "login_url", "domain"},
    "client_credentials": {"consumer_key", "consumer_secret", "login_url"},
    "password": {"username", "password", "security_token", "login_url", "domain"},
    "session": {"instance_url", "session_id"},
}
GENERIC_HOSTS = ("login.salesforce.com", "test.salesforce.com")
# REST API versions the connector is tested against (README: "Salesforce API versions"); the
# default is the newest. Password mode logs in through SOAP at 64.0 at most (absent from 65.0).
TESTED_API_VERSIONS = ("59.0", "62.0", "64.0", "66.0")
DEFAULT_API_VERSION = TESTED_API_VERSIONS[-1]


class SalesforceSettings(ConnectorSettings):
    """The `settings:` block of a Salesforce source: one way in (`auth`) and what it needs."""

    object: Literal["Contact", "Lead"] = "Contact"
    auth: AuthMode | None = None  # inferred from the keys that are set when left out
    instance_url: str | None = None
    session_id: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key: SecretStr | None = None  # PEM text, normally ${ENV}
    private_key_file: str | None = None
    login_url: str | None = None  # My Domain URL; overrides https://{domain}.salesforce.com
    domain: str = "login"
    api_version: str = Field(DEFAULT_API_VERSION, pattern=r"^\d{2,3}\.\d$")
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

    @field_validator("domain")
    @classmethod
    def _domain_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", value):
            raise ValueError("must be login, test or a My Domain name (acme.my)")
        return value.removesuffix(".salesforce.com")

    @model_validator(mode="before")
    @classmethod
    def _infer_auth(cls, data: Any) -> Any:
        """Fill `auth` from the keys set; refuse keys of two flows at once, naming them."""
        if not isinstance(data, dict):
            return data
        present = {key for key, value in data.items() if value not in (None, "")}
        flows = {flow: [k for k in keys if k in present] for flow, keys in FLOW_KEYS.items()}
        flows = {flow: keys for flow, keys in flows.items() if keys}
        chosen = data.get("auth")
        if chosen is None:
            if len(flows) > 1:
                named = "; ".join(f"{', '.join(keys)} ({flow})" for flow, keys in flows.items())
                raise ValueError(
                    f"ambiguous credentials: {named}; set `auth:` to one flow and remove "
                    "the keys of the others"
                )
            if not flows:
                raise ValueError(
                    "no credentials: set `auth:` (jwt, client_credentials, password or session) "
                    "and its keys; see the README, section Salesforce"
                )
            return {**data, "auth": next(iter(flows))}
        if chosen in USED_BY:
            unused = sorted(present & set().union(*FLOW_KEYS.values()) - USED_BY[chosen])
            if unused:
                names = ", ".join(unused)
                raise ValueError(f"auth is {chosen}, but {names} belong to another flow")
        return data

    @model_validator(mode="after")
    def _flow_complete(self) -> SalesforceSettings:
        mode = self.auth
        assert mode is not None  # filled by _infer_auth
        missing = [key for key in REQUIRED[mode] if getattr(self, key) in (None, "")]
        if missing:
            raise ValueError(f"auth {mode} needs {', '.join(missing)}")
        if mode == "jwt" and bool(self.private_key) == bool(self.private_key_file):
            raise ValueError("auth jwt needs one of private_key (PEM text) or private_key_file")
        if mode == "client_credentials" and self.login_url:
            host = urlsplit(self.login_url).hostname or ""
            if host in GENERIC_HOSTS:
                raise ValueError(
                    "auth client_credentials needs your My Domain login_url "
                    "(https://yourdomain.my.salesforce.com), not " + host
                )
        return self

    @property
    def mode(self) -> str:
        """The login flow, resolved."""
        return self.auth or "session"

    @property
    def login_base(self) -> str:
        """Where tokens and SOAP logins are asked for (and the JWT's audience)."""
        return self.login_url or f"https://{self.domain}.salesforce.com"


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
