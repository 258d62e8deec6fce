"""The configuration file: YAML, `${VAR}` from the environment, validated once, then frozen.

Every error is collected and reported at once with the dotted path of the key
(`sources[0].fields.phone: ...`), so a user fixes a file in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from connectors.base import SourceSpec
from crm_sync.config_service import (
    FrozenModel,
    MetricsConfig,
    NotifyConfig,
    ScheduleConfig,
    WebhookConfig,
)
from crm_sync.enrichment.email_statuses import EMAIL_STATUSES, WRITABLE_BY_DEFAULT
from crm_sync.errors import ConfigError
from crm_sync.fields import LOGICAL_FIELDS

PROVIDER_BASE_URLS: dict[str, str] = {
    "fullenrich": "https://app.fullenrich.com/api/v1",
    "deepenrich": "https://app.deepenrich.com/api/v1",
}
#: The default base URL per (provider, api_version); DeepEnrich speaks v1 only.
VERSIONED_BASE_URLS: dict[tuple[str, str], str] = {
    ("fullenrich", "v1"): PROVIDER_BASE_URLS["fullenrich"],
    ("fullenrich", "v2"): "https://app.fullenrich.com/api/v2",
    ("deepenrich", "v1"): PROVIDER_BASE_URLS["deepenrich"],
}
API_VERSIONS = ("v1", "v2")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class EnrichmentConfig(FrozenModel):
    """How to reach the enrichment API and how fast we may call it."""

    provider: Literal["fullenrich", "deepenrich"] = "fullenrich"
    api_version: Literal["v1", "v2"] = "v1"
    base_url: str | None = None
    api_key: SecretStr
    webhook_events: tuple[Literal["contact_finished"], ...] = ()
    rate_limit_per_minute: int = Field(60, ge=1, le=10_000)
    # The API's rate window; `rate_limit_per_minute` calls are allowed per window. Only a
    # sandbox or a test with a faster clock sets anything but 60.
    rate_limit_window_seconds: float = Field(60.0, gt=0, le=3600)
    # Share of each minute's calls kept for result polling (a backlog cannot starve collection).
    poll_share: float = Field(0.1, ge=0, lt=1)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(5, ge=0, le=20)
    backoff_cap_seconds: float = Field(60.0, gt=0)

    @field_validator("api_key")
    @classmethod
    def _key_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("api_version")
    @classmethod
    def _version_fits(cls, value: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider", "fullenrich")
        if (provider, value) not in VERSIONED_BASE_URLS:
            raise ValueError(f"{provider} speaks v1 only (v2 is FullEnrich's); use v1")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _events_need_v2(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("api_version", "v1") != "v2":
            raise ValueError("per-contact webhook events need api_version: v2")
        return value

    @property
    def resolved_base_url(self) -> str:
        """The base URL in force: the override, or the provider's default for the version."""
        return self.base_url or VERSIONED_BASE_URLS[(self.provider, self.api_version)]


class StateConfig(FrozenModel):
    """Where the durable state lives: a SQLite file by default, PostgreSQL by URL."""

    url: str = "sqlite:///crm-sync.sqlite3"
    in_doubt_release_hours: float = Field(72.0, gt=0)
    # Days a verified result that no batch claimed is kept (then pruned, with a warning).
    unmatched_result_days: float = Field(90.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=300)
    statement_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    # A source lease lives this long without renewal; the holder renews it every third of it,
    # so a replica that dies is replaced (on any host) within about this long.
    lease_ttl_seconds: float = Field(60.0, ge=1, le=3600)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// path or a postgresql:// URL")
        return value


class CooldownConfig(FrozenModel):
    """Days before a contact is asked about again, by the outcome of the last ask."""

    found_days: float = Field(90.0, ge=0)
    not_found_days: float = Field(30.0, ge=0)


class BudgetConfig(FrozenModel):
    """Credit ceilings for one source; None means no ceiling of that kind."""

    per_run: int | None = Field(None, ge=0)
    per_day: int | None = Field(None, ge=0)


class SourceConfig(FrozenModel):
    """One CRM to keep reachable, with its own field map, filters, budget and cooldown."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    connector: str
    settings: dict[str, Any] = Field(default_factory=dict, repr=False)  # holds secrets
    fields: dict[str, str]
    filters: Any = None
    opt_out_field: str | None = None
    overwrite: dict[str, bool] = Field(default_factory=dict)
    accepted_email_statuses: tuple[str, ...] = WRITABLE_BY_DEFAULT
    cooldown: CooldownConfig = CooldownConfig()
    budget: BudgetConfig = BudgetConfig()
    max_scan_per_run: int | None = Field(None, ge=1)
    enabled: bool = True

    def spec(self) -> SourceSpec:
        """What this source's connector is told: name, field map, filters, opt-out, settings."""
        return SourceSpec(
            name=self.name,
            fields=dict(self.fields),
            filters=self.filters,
            opt_out_field=self.opt_out_field,
            settings=dict(self.settings),
        )

    @field_validator("fields")
    @classmethod
    def _fields_known(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LOGICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(LOGICAL_FIELDS)}")
        if not value:
            raise ValueError("must map at least one of: email, phone")
        for logical, crm_name in value.items():
            if not crm_name.strip():
                raise ValueError(f"{logical} maps to an empty CRM field name")
        return value

    @field_validator("overwrite")
    @classmethod
    def _overwrite_known(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(LOGICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(LOGICAL_FIELDS)}")
        return value

    @field_validator("accepted_email_statuses")
    @classmethod
    def _statuses_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for status in value:
            if status not in EMAIL_STATUSES:
                raise ValueError(
                    f"unknown email status {status!r}; known: {', '.join(EMAIL_STATUSES)}"
                )
        return value


class RunConfig(FrozenModel):
    """Policies of one cycle that hold across sources."""

    min_balance: int = Field(0, ge=0)
    reserve: int = Field(0, ge=0)
    batch_size: int = Field(100, ge=1, le=100)
    poll_initial_seconds: float = Field(5.0, gt=0)
    poll_max_seconds: float = Field(60.0, gt=0)
    collect_deadline_seconds: float = Field(1800.0, gt=0)
    max_contacts_per_run: int | None = Field(None, ge=1)
    # Polls of a result that cannot be read at all before its batch is failed.
    max_unreadable_results: int = Field(5, ge=1)
    # The fresh lane's open batch is sent at `batch_size` contacts or when its oldest has waited
    # this long; the lane also sends at most one POST per this many seconds per source.
    max_batch_wait_seconds: float = Field(60.0, gt=0)


class Config(FrozenModel):
    """The whole file. Only `enrichment` is required."""

    enrichment: EnrichmentConfig
    state: StateConfig = StateConfig()
    run: RunConfig = RunConfig()
    sources: tuple[SourceConfig, ...] = ()
    schedule: ScheduleConfig = ScheduleConfig()
    webhook: WebhookConfig = WebhookConfig()
    notify: NotifyConfig = NotifyConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _unique_sources(self) -> Config:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self


def require_sources(config: Config) -> None:
    """`--once` and `run` need at least one enabled source (`check` does not)."""
    if not any(source.enabled for source in config.sources):
        what = "every source is disabled" if config.sources else "the list is empty"
        raise ConfigError(
            f"sources: no enabled source ({what}); add one or set enabled: true "
            "(`crm-sync check` works without sources)"
        )


def interpolate_env(
    value: Any, env: Mapping[str, str], path: str = "", missing: list[str] | None = None
) -> Any:
    """Replace `${VAR}` (or `${VAR:-default}`) in every string; record each missing variable."""
    if missing is None:
        missing = []
    if isinstance(value, str):

        def _sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append(f"{path or '<root>'}: environment variable {name} is not set")
            return ""

        return _ENV_PATTERN.sub(_sub, value)
    if isinstance(value, dict):
        return {k: interpolate_env(v, env, _join(path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, env, f"{path}[{i}]", missing) for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, part)
    return out


def parse_config(raw: Any, env: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed YAML document; raise ConfigError listing every problem.

    Each source's connector settings and filters are the connector's to judge: the wiring
    checks them (`crm_sync.wiring.check_sources`) once this model is valid.
    """
    if not isinstance(raw, dict):
        raise ConfigError("config: the file must hold a mapping with at least an `enrichment` key")
    missing: list[str] = []
    data = interpolate_env(raw, os.environ if env is None else env, "", missing)
    problems = list(missing)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except PydanticValidationError as exc:
        unset = {line.split(": ", 1)[0] for line in missing}
        for err in exc.errors():
            where = _loc_to_path(tuple(err["loc"])) or "<root>"
            if where in unset:  # already reported as the missing variable it comes from
                continue
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key is missing"
            problems.append(f"{where}: {msg}")
    if problems:
        # A missing variable also makes its key fail validation: keep the clearer line only.
        problems = _dedupe(problems)
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems), problems)
    assert config is not None
    return config


def _dedupe(problems: list[str]) -> list[str]:
    seen: list[str] = []
    for p in problems:
        if p not in seen:
            seen.append(p)
    return seen


def load_state_config(path: str | Path, env: Mapping[str, str] | None = None) -> StateConfig:
    """Only the `state` section of a config file: commands that read the store need no secret.

    Variables are interpolated in that section alone, so `status` works in a shell where the
    API keys and CRM tokens are not set.
    """
    raw = _read_yaml(Path(path))
    section = raw.get("state", {}) if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        raise ConfigError("state: must be a mapping (url, in_doubt_release_hours, ...)")
    missing: list[str] = []
    data = interpolate_env(section, os.environ if env is None else env, "state", missing)
    problems = list(missing)
    try:
        state = StateConfig.model_validate(data)
    except PydanticValidationError as exc:
        for err in exc.errors():
            where = _loc_to_path(("state", *err["loc"]))
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {msg.removeprefix('Value error, ')}")
    if problems:
        problems = _dedupe(problems)
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems), problems)
    return state


def _read_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {file}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {file}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config: {file} is not valid YAML{where}") from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file."""
    return parse_config(_read_yaml(Path(path)), env)
