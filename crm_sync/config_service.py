"""Config sections about running as a service: the schedule, the HTTP server, notifications,
and the metrics push. `crm_sync.config` assembles them into `Config` (import them from there).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class FrozenModel(BaseModel):
    """Every config section: unknown keys are errors, and values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(FrozenModel):
    """When the daemon runs a cycle: a cron expression or a fixed interval."""

    cron: str | None = None
    interval_minutes: float | None = Field(None, gt=0)
    misfire_grace_seconds: int = Field(300, ge=1)
    poll_interval_seconds: float = Field(30.0, gt=0)
    # The daemon's incremental scan of each source (0: off, the scheduled full scan only).
    fresh_scan_seconds: float = Field(60.0, ge=0)
    # How far before its cursor an incremental scan starts again (clock skew, index lag).
    fresh_overlap_seconds: float = Field(30.0, ge=0)
    shutdown_grace_seconds: float = Field(25.0, ge=0)
    health_missed_cycles: int = Field(3, ge=1, le=1000)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        """Parsed by APScheduler itself, so what loads here is what `crm-sync run` schedules."""
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{value!r} is not a 5-field crontab expression ({exc}); for example '*/15 * * * *'"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if self.cron is not None and self.interval_minutes is not None:
            raise ValueError("set either cron or interval_minutes, not both")
        return self


class WebhookConfig(FrozenModel):
    """The in-process HTTP server: webhook receiver, health and metrics."""

    enabled: bool = True
    listen: str = "0.0.0.0:8080"
    public_url: str | None = None
    path: str = "/webhooks/enrichment"
    require_signature: bool = True
    max_body_bytes: int = Field(5_000_000, ge=1024)
    body_timeout_seconds: float = Field(10.0, gt=0, le=600)
    readyz_timeout_seconds: float = Field(2.0, gt=0, le=60)
    poll_after_seconds: float = Field(600.0, ge=0)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, for example 0.0.0.0:8080")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


NOTIFY_EVENTS = ("failed", "in_doubt", "low_balance", "budget_reached", "finished")
NotifyEvent = Literal["failed", "in_doubt", "low_balance", "budget_reached", "finished"]


class NotifyConfig(FrozenModel):
    """Where to tell a person that a run needs them: apprise URLs, read from the environment."""

    urls: tuple[SecretStr, ...] = ()
    events: tuple[NotifyEvent, ...] = ("failed", "in_doubt", "low_balance", "budget_reached")
    repeat_hours: float = Field(24.0, ge=0)
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("urls")
    @classmethod
    def _urls_usable(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        """Parsed by apprise itself at load (exit 2), not at the first failure; never echoed."""
        from crm_sync.outputs.notify_urls import url_problem

        problems = [
            f"entry {index} {problem}"
            for index, url in enumerate(value)
            if (problem := url_problem(url.get_secret_value()))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value


class MetricsConfig(FrozenModel):
    """Metrics pushed at the end of a `--once` run (CronJobs are gone before a scrape)."""

    pushgateway_url: str | None = None
    pushgateway_job: str = Field("crm-sync", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    push_timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("pushgateway_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value
