"""DEBUG lines for every CRM call: method, path, status, duration; never a header, query or token.

Both SDKs are observed from the outside, never patched:
- simple-salesforce sends through a `requests.Session` we build: a response hook (`attach`)
  sees each answer with its method, URL, status and `elapsed`.
- hubspot-api-client sends through urllib3, which logs each answer's request line on the
  `urllib3.connectionpool` logger; `urllib3_handler()` turns that record into our event, timed
  from the start the connector marks with `crm_call("hubspot")` around the SDK call.
Only the URL's path is kept: query strings may hold SOQL or values, headers hold the tokens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.logs import get_logger, on_debug_change

if TYPE_CHECKING:
    import requests

URLLIB3_LOGGER = "urllib3.connectionpool"
_local = threading.local()


def log_call(
    service: str, method: str, url: str, status: int | None, duration_ms: float | None
) -> None:
    """One `crm.call` event at DEBUG."""
    get_logger(component="crm").debug(
        "crm.call",
        service=service,
        method=method,
        path=urlsplit(url).path,
        status=status,
        duration_ms=None if duration_ms is None else round(duration_ms, 1),
    )


def attach(session: requests.Session, service: str) -> None:
    """Log every answer `session` receives (a requests response hook)."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        request = response.request
        elapsed = response.elapsed.total_seconds() * 1000
        log_call(service, request.method or "?", response.url, response.status_code, elapsed)

    session.hooks["response"].append(hook)


@contextmanager
def crm_call(service: str, clock: Clock = SYSTEM_CLOCK) -> Iterator[None]:
    """Mark the calls urllib3 makes on this thread as `service`'s, timed from here."""
    _local.service, _local.clock = service, clock
    _local.started = clock.monotonic()
    try:
        yield
    finally:
        _local.service = None


class _Urllib3Handler(logging.Handler):
    """Turns urllib3's `"METHOD /path HTTP/1.1" status length` record into a `crm.call`."""

    def emit(self, record: logging.LogRecord) -> None:
        service = getattr(_local, "service", None)
        args = record.args
        if service is None or not isinstance(args, tuple) or len(args) < 7:
            return
        _scheme, _host, _port, method, url, _version, status = args[:7]
        started = getattr(_local, "started", None)
        clock: Clock = getattr(_local, "clock", SYSTEM_CLOCK)
        now = clock.monotonic()
        duration = (now - started) * 1000 if started is not None else None
        _local.started = now  # a retry inside the SDK call is timed from here
        log_call(service, str(method), str(url), _status(status), duration)


def _status(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


_handler = _Urllib3Handler()


def enable_urllib3_calls(enabled: bool) -> None:
    """Listen to urllib3's request lines (at DEBUG only: they cost nothing otherwise)."""
    logger = logging.getLogger(URLLIB3_LOGGER)
    if enabled:
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    elif _handler in logger.handlers:
        logger.removeHandler(_handler)


on_debug_change(enable_urllib3_calls)
