"""Process exit codes, shared by the CLI, the pipeline and the Kubernetes manifests.

The one table every other place reads (the CLI, the CronJob's podFailurePolicy, the README, the
tests). Each code tells an operator whether to fix something or to retry.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1  # a source failed for a reason a retry will not fix (query refused, daily quota)
EXIT_PARTIAL = EXIT_FAILED  # former name, kept while callers move to EXIT_FAILED
EXIT_CONFIG = 2  # the config file, a mapped CRM field or the environment is wrong: fix it
EXIT_AUTH = 3  # a key, token or secret was refused: renew it
EXIT_CREDITS = 4  # not enough enrichment credits: top up
EXIT_TRANSIENT = 5  # infrastructure unreachable (store, network, API 5xx/429): retry later
EXIT_IN_DOUBT = 6  # a person must act: a batch may be paid for and its answer is unknown
EXIT_INTERRUPTED = 7  # stopped by SIGTERM/SIGINT before the run finished: run again

# Codes that a plain retry may fix; a CronJob counts only these against its backoffLimit.
RETRYABLE_EXIT_CODES = frozenset({EXIT_TRANSIENT, EXIT_INTERRUPTED})

#: One line per code, as the README's exit code table shows it (a test keeps them equal).
MEANINGS: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_FAILED: "a source failed for a reason a retry will not fix (query refused, daily quota)",
    EXIT_CONFIG: "config error (file, environment, mapped CRM field, state store path or database)",
    EXIT_AUTH: "a key, token or password was refused",
    EXIT_CREDITS: "not enough enrichment credits",
    EXIT_TRANSIENT: "infrastructure unreachable or overloaded (store, network, API 5xx or 429)",
    EXIT_IN_DOUBT: "a batch is in_doubt: a person must act (`crm-sync status`, `crm-sync resolve`)",
    EXIT_INTERRUPTED: "stopped by SIGTERM or SIGINT before the run finished",
}

#: The run status recorded in the store (and shown by `status`) for each exit code.
RUN_STATUS: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_FAILED: "failed",
    EXIT_CONFIG: "config_error",
    EXIT_AUTH: "auth_refused",
    EXIT_CREDITS: "no_credits",
    EXIT_TRANSIENT: "transient",
    EXIT_IN_DOUBT: "in_doubt",
    EXIT_INTERRUPTED: "interrupted",
}

# When several things went wrong, the code that wins: what a person must do outranks what a
# retry may fix, so a CronJob never hides a standing alarm behind a retryable code.
_SEVERITY = (
    EXIT_IN_DOUBT,
    EXIT_CONFIG,
    EXIT_AUTH,
    EXIT_CREDITS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TRANSIENT,
    EXIT_OK,
)


def most_severe(codes: Iterable[int]) -> int:
    """The code a run exits with when its parts ended with `codes` (EXIT_OK when empty)."""
    present = set(codes)
    for code in _SEVERITY:
        if code in present:
            return code
    return max(present, default=EXIT_OK)


def is_retryable(code: int) -> bool:
    """True when running the same command again may succeed without anyone acting."""
    return code in RETRYABLE_EXIT_CODES
