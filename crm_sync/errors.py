"""Exceptions named by what the caller should do.

    CrmSyncError
     ├── ConfigError            fix the config file or environment; exit 2
     ├── AuthError              a key or token was refused; renew it; exit 3
     │    └── EnrichmentAuthError
     ├── InsufficientCredits    top up the enrichment account; exit 4
     ├── FatalError             stop this source or run; retrying will not help
     │    ├── ValidationError   the API refused the request (carries the API's code)
     │    ├── NotFoundError     the resource does not exist (or expired)
     │    └── QuotaExhausted    a CRM's daily API allocation is spent
     ├── RetriableError         try again later (the client already retried what it could)
     │    ├── RateLimited
     │    ├── ServerError
     │    │    └── UnreadableResult  a result whose envelope cannot be read (bounded retries)
     │    └── StoreUnavailable  the state store cannot be reached (exit 5)
     ├── OutcomeUnknown         a paid request may or may not have reached the API: never resend
     ├── NotSent                the request never left (stop requested while waiting): resend later
     └── RunFailed              a run ended by an error, recorded with its report and exit code

Messages never contain secrets: the classes take only what the caller passes, and callers pass
codes and statuses, never headers or keys.
"""

from __future__ import annotations


class CrmSyncError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CrmSyncError):
    """The config file or the environment is wrong; `problems` lists every error found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class AuthError(CrmSyncError):
    """A credential was refused by a remote service."""

    def __init__(self, message: str, *, service: str = "", code: str = "") -> None:
        self.service = service
        self.code = code
        super().__init__(message)


class EnrichmentAuthError(AuthError):
    """The enrichment API refused the API key."""


class InsufficientCredits(CrmSyncError):
    """The enrichment account has fewer credits than the run needs."""


class FatalError(CrmSyncError):
    """Retrying the same call cannot succeed."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class ValidationError(FatalError):
    """The remote API refused the request as invalid; `code` is the API's own error code."""


class NotFoundError(FatalError):
    """The requested resource does not exist (or no longer does)."""


class QuotaExhausted(FatalError):
    """A daily API allocation is spent; the source must stop until it refills."""


class RetriableError(CrmSyncError):
    """A transient failure that outlived the client's own retries."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class RateLimited(RetriableError):
    """The remote service answered 429 more often than we were willing to wait."""


class ServerError(RetriableError):
    """The remote service kept failing with 5xx or connection errors."""


class UnreadableResult(ServerError):
    """A result answer that cannot be read at all (not an object, `datas` not a list, ...).

    Retried with backoff a bounded number of times (the API may serve it right later); then the
    batch ends `failed` with this message. One unreadable item is not this: it is `malformed`.
    """


class OutcomeUnknown(CrmSyncError):
    """A non-idempotent request was sent but no answer came back: it may have been executed.

    For the enrichment POST this means credits may have been spent. The batch must become
    `in_doubt` and must never be resent automatically.
    """


class NotSent(CrmSyncError):
    """The request was abandoned before it left this process (a stop was requested).

    Nothing reached the API, so nothing was made or charged: the caller may send it later.
    """


class StoreUnavailable(RetriableError):
    """The state store did not answer (refused, timed out, went away): retry later."""


class RunFailed(CrmSyncError):
    """A run that an error ended early; it was recorded, and `report` says how far it got.

    `exit_code` is the most severe of the error's code and the run's own (an in_doubt batch
    keeps the alarm code even when the API is down).
    """

    def __init__(self, message: str, *, exit_code: int, report: object) -> None:
        self.exit_code = exit_code
        self.report = report
        super().__init__(message)
