"""What a HubSpot source configures: how it authenticates, where, and at what pace."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from connectors.base import ConnectorSettings
from connectors.hubspot.auth import auth_problems


class HubSpotSettings(ConnectorSettings):
    """`settings:` of a HubSpot source: a private app's token, or an OAuth app's refresh token."""

    auth: Literal["private_app", "oauth"] = "private_app"  # inferred from the keys set
    access_token: SecretStr | None = None  # private_app
    client_id: str | None = None  # oauth, with client_secret and refresh_token
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    base_url: str | None = None  # host override, e.g. the sandbox emulator
    linkedin_property: str = "hs_linkedin_url"
    company_property: str = "company"
    domain_property: str = "website"
    requests_per_second: float = Field(4.0, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def _auth_keys(cls, data: Any) -> Any:
        return auth_problems(data) if isinstance(data, dict) else data
