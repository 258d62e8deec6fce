"""Logging, configured in one place (the CLI); modules only bind context and emit events.

Every event passes through `redact_secrets`: values of keys that name a secret are masked, and
any registered secret (API keys, tokens) found inside any string is replaced, so a key cannot
reach a log line even through an exception message or a URL.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

MASK = "***"
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|session_id)", re.I)
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is masked wherever it appears in a log event."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every registered secret masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {
            k: MASK if _SECRET_KEY.search(str(k)) else _scrub_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v) for v in value)
    return value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys and registered secret values."""
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = MASK
        else:
            event_dict[key] = _scrub_value(event_dict[key])
    return event_dict


class _CurrentStderr:
    """`sys.stderr` as it is at each write, not as it was when logging was configured.

    A progress display replaces `sys.stderr` while it is shown, to print lines above itself; a
    logger holding the original stream would write through the display and garble it.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=_CurrentStderr())  # type: ignore[arg-type]


#: Told whether DEBUG is on, now and at each `configure_logging` (connectors' call logs listen:
#: they hook urllib3 only at DEBUG). A registry, so that this module imports no connector.
_debug_listeners: list[Callable[[bool], None]] = []
_debug = False


def on_debug_change(listener: Callable[[bool], None]) -> None:
    """Call `listener(debug_on)` now and whenever logging is configured again."""
    _debug_listeners.append(listener)
    listener(_debug)


def _set_debug(enabled: bool) -> None:
    global _debug  # noqa: PLW0603 - one process-wide logging configuration, like structlog's own
    _debug = enabled
    for listener in _debug_listeners:
        listener(enabled)


def configure_logging(*, json: bool | None = None, level: str = "INFO") -> None:
    """JSON lines when stdout is not a terminal (or when asked), readable lines otherwise.

    Logs go to stderr so that `--json` output on stdout stays one parseable object.
    `CRM_SYNC_LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR) overrides the command's level.
    """
    level = os.environ.get("CRM_SYNC_LOG_LEVEL", level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "INFO"
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    _set_debug(level == "DEBUG")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # sys.stderr read at each line, not once here: a test (or a caller) that swaps stderr and
        # closes it must not leave every later log line writing to a dead file, and a progress
        # display that redirects stderr gets the lines to print above itself.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A structlog logger with bound context (`source=`, `run_id=`, `batch=`)."""
    return structlog.get_logger("crm_sync").bind(**context)
