"""Any exception that ends a command, as one short message and the exit code that says what to do.

The CLI's last line of defence: a user reads "crm-sync: <what failed, naming the key, URL or
path>" and "what to do: <fix or retry>", never a traceback (that is logged at DEBUG only). The
exit code comes from `crm_sync.exit_codes`; a retry-able failure is 5, a standing alarm 6.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import httpx
import requests
from sqlalchemy.exc import SQLAlchemyError

from crm_sync import errors
from crm_sync.exit_codes import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_CREDITS,
    EXIT_FAILED,
    EXIT_IN_DOUBT,
    EXIT_INTERRUPTED,
    EXIT_TRANSIENT,
)
from crm_sync.logs import scrub

ADVICE: dict[int, str] = {
    EXIT_FAILED: "fix the cause named above; running again as is will fail the same way",
    EXIT_CONFIG: "fix the config (or the environment) and run again",
    EXIT_AUTH: "renew or correct the credential named above",
    EXIT_CREDITS: "top up the enrichment account or lower run.min_balance",
    EXIT_TRANSIENT: "nothing to change; retry later",
    EXIT_IN_DOUBT: "see `crm-sync status`, then settle it with `crm-sync resolve`",
    EXIT_INTERRUPTED: "run again; nothing was lost",
}


@dataclass(frozen=True)
class Failure:
    """What to print and which code to exit with."""

    exit_code: int
    message: str

    def render(self) -> str:
        advice = ADVICE.get(self.exit_code, "")
        text = f"crm-sync: {self.message}"
        if advice and "\n" not in self.message:
            text += f"\n  what to do: {advice} (exit {self.exit_code})"
        return scrub(text)


def classify(exc: BaseException, *, state_url: str | None = None) -> Failure:
    """The Failure an exception that reached the top of a command stands for."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "interrupted")
    if isinstance(exc, errors.CrmSyncError):
        return Failure(code_for(exc), str(exc) or type(exc).__name__)
    if isinstance(exc, SQLAlchemyError | sqlite3.Error):
        from crm_sync.store.opening import store_error

        translated = store_error(exc, state_url or "sqlite://", key="state.url")
        return Failure(code_for(translated), str(translated))
    network = _network_failure(exc)
    if network is not None:
        return network
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return Failure(
        EXIT_FAILED,
        f"unexpected error {type(exc).__name__}{': ' + detail if detail else ''} "
        "(CRM_SYNC_LOG_LEVEL=DEBUG logs the traceback; please report it)",
    )


# Our own errors, most specific first: the first class that matches gives the code.
_CODES: tuple[tuple[type[errors.CrmSyncError], int], ...] = (
    (errors.ConfigError, EXIT_CONFIG),
    (errors.AuthError, EXIT_AUTH),
    (errors.InsufficientCredits, EXIT_CREDITS),
    (errors.OutcomeUnknown, EXIT_IN_DOUBT),
    (errors.RetriableError, EXIT_TRANSIENT),
)


def code_for(exc: errors.CrmSyncError) -> int:
    """The exit code of one of our own errors."""
    if isinstance(exc, errors.RunFailed):
        return exc.exit_code
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_FAILED


def _network_failure(exc: BaseException) -> Failure | None:
    """A transport error of a library that escaped its client's own translation."""
    if isinstance(exc, httpx.TransportError):
        url = _request_url(exc)
    elif isinstance(exc, requests.ConnectionError | requests.Timeout):
        url = str(exc.request.url) if exc.request is not None else "a CRM"
    elif isinstance(exc, ConnectionError | TimeoutError):
        url = str(exc) or "a remote service"
    else:
        return None
    return Failure(EXIT_TRANSIENT, f"network failure talking to {url}: {type(exc).__name__}")


def _request_url(exc: httpx.TransportError) -> str:
    try:
        return str(exc.request.url.copy_with(query=None))
    except RuntimeError:
        return "a remote service"
