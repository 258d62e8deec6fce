"""Tell a person when a run needs one: notifications through apprise (`notify:` in the config).

Events: `failed` (a source failed, or the run could not run), `in_doubt` (a batch may be paid
for with no answer recorded), `low_balance` (below `run.min_balance`), `budget_reached` (a
source used its budget), `finished` (every run; off unless listed). Each text names the
source, the reason and the command to run.

apprise URLs carry tokens, so they are secrets: read from the environment, registered with the
log scrubber, never logged (a failure names the URL's position and scheme only). A notification
that cannot be delivered is logged and never fails the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_sync.logs import get_logger, register_secret, scrub
from crm_sync.outputs.notify_repeats import BUDGET_REACHED, NOT_FAILURES, events_of
from crm_sync.outputs.notify_urls import quiet_apprise

if TYPE_CHECKING:
    from crm_sync.config_service import NotifyConfig
    from crm_sync.pipeline.report import RunReport

__all__ = ["BUDGET_REACHED", "Notice", "Notifier", "failure_notice", "notices_for"]


def _log() -> Any:
    return get_logger(component="notify")


@dataclass(frozen=True)
class Notice:
    """One thing to tell: what happened, to which source, why, and what to run."""

    event: str
    source: str | None
    reason: str
    command: str

    @property
    def title(self) -> str:
        where = f" {self.source}" if self.source else ""
        return f"crm-sync{where}: {self.event.replace('_', ' ')}"

    @property
    def body(self) -> str:
        where = f"source {self.source}" if self.source else "run"
        return scrub(
            f"crm-sync {where}: {self.event.replace('_', ' ')}: {self.reason}\nRun: {self.command}"
        )


def _cmd(command: str, config_path: str | None) -> str:
    return f"crm-sync {command}" + (f" --config {config_path}" if config_path else "")


def notices_for(
    report: RunReport, config_path: str | None = None, *, failure: str | None = None
) -> list[Notice]:
    """What a run has to tell, per source, before filtering by the configured events.

    `failure` is why a run ended early (the store or the API went away): told as `failed`.
    """
    notices: list[Notice] = []
    status_cmd = _cmd("status", config_path)
    standing: dict[str, list[dict[str, Any]]] = {}
    for batch in getattr(report, "in_doubt", None) or []:
        standing.setdefault(str(batch.get("source")), []).append(batch)
    for source in report.sources:
        name = source.name
        doubts = standing.pop(name, [])
        events = events_of(
            in_doubt=source.counts.in_doubt + len(doubts),
            exit_code=source.exit_code,
            status=source.status,
            message=source.message,
        )
        if "in_doubt" in events:
            notices.append(_in_doubt(name, doubts, source.counts.in_doubt, config_path))
        if "low_balance" in events:
            notices.append(
                Notice(
                    "low_balance",
                    name,
                    source.message or "not enough enrichment credits",
                    "top up the enrichment account, then " + _cmd("check", config_path),
                )
            )
        if "budget_reached" in events:
            notices.append(
                Notice(
                    "budget_reached",
                    name,
                    source.message,
                    "nothing, the rest waits for the next run; or raise the source's budget",
                )
            )
        if "failed" in events:
            notices.append(
                Notice(
                    "failed",
                    name,
                    source.message or f"exit code {source.exit_code}",
                    _cmd("check", config_path),
                )
            )
    for name, doubts in standing.items():  # sources that did not run this time
        notices.append(_in_doubt(name, doubts, 0, config_path))
    if failure is not None:
        notices.append(failure_notice(failure, config_path))
    elif report.exit_code not in NOT_FAILURES and not any(n.event == "failed" for n in notices):
        notices.append(
            Notice("failed", None, f"exit code {report.exit_code}", _cmd("check", config_path))
        )
    notices.append(
        Notice(
            "finished",
            None,
            f"run {report.run_id} exited {report.exit_code}, "
            f"{sum(s.counts.credits_spent for s in report.sources)} credits spent",
            status_cmd,
        )
    )
    return notices


def _in_doubt(
    source: str, doubts: list[dict[str, Any]], new: int, config_path: str | None
) -> Notice:
    """Each in-doubt batch by id and by the name the provider's dashboard shows."""
    status_cmd = _cmd("status", config_path)
    if not doubts:
        reason = (
            f"{new} contacts in a batch that may have been paid for with no answer recorded "
            "(never resent automatically)"
        )
        return Notice("in_doubt", source, reason, f"{status_cmd}, then crm-sync resolve BATCH")
    listed = "; ".join(
        f'batch {b.get("batch")} "{b.get("name")}" ({b.get("contacts")} contacts, '
        f"up to {b.get('worst_case_credits')} credits)"
        for b in doubts
    )
    reason = (
        f"{len(doubts)} batch(es) may have been paid for with no answer recorded: {listed}; "
        "never resent automatically"
    )
    resolve = _cmd(f"resolve {doubts[0].get('batch')}", config_path)
    command = f"{status_cmd}, then {resolve} --sent [--enrichment-id ID] (or --not-sent)"
    return Notice("in_doubt", source, reason, command)


def failure_notice(reason: str, config_path: str | None = None) -> Notice:
    """A run that could not finish at all (store down, API unreachable, ...)."""
    return Notice("failed", None, reason, _cmd("check", config_path))


_TYPES = {
    "failed": "failure",
    "in_doubt": "failure",
    "low_balance": "warning",
    "budget_reached": "info",
    "finished": "success",
}


class Notifier:
    """apprise, set up once from `notify:`; `send` never raises."""

    def __init__(self, config: NotifyConfig) -> None:
        self.events = frozenset(config.events)
        self._targets: list[tuple[int, str, Any]] = []
        if not config.urls:
            return
        import apprise

        quiet_apprise()
        for index, secret in enumerate(config.urls):
            url = secret.get_secret_value()
            register_secret(url)
            scheme = url.split("://", 1)[0]
            server = apprise.Apprise.instantiate(url)
            if not server:
                _log().error("notify_url_invalid", index=index, scheme=scheme)
                continue
            server.socket_connect_timeout = config.timeout_seconds
            server.socket_read_timeout = config.timeout_seconds
            self._targets.append((index, scheme, server))

    @property
    def enabled(self) -> bool:
        return bool(self._targets and self.events)

    def send(self, notices: Iterable[Notice]) -> int:
        """Deliver each notice whose event is configured to every URL; the count delivered."""
        delivered = 0
        for notice in notices:
            if notice.event not in self.events:
                continue
            for index, scheme, server in self._targets:
                if self._deliver(server, notice):
                    delivered += 1
                    _log().info(
                        "notification_sent", notify_event=notice.event, index=index, scheme=scheme
                    )
                else:
                    _log().warning(
                        "notification_failed", notify_event=notice.event, index=index, scheme=scheme
                    )
        return delivered

    @staticmethod
    def _deliver(server: Any, notice: Notice) -> bool:
        import apprise

        kind = apprise.NotifyType(_TYPES[notice.event])
        try:
            return bool(server.notify(body=notice.body, title=notice.title, notify_type=kind))
        except Exception:  # a notification must never fail the run
            return False
