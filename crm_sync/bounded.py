"""A call to the store that an HTTP answer waits for at most a few seconds.

A database that hangs (a dead connection, a stuck server) must not hang `/readyz` or `/metrics`,
nor pile up threads: the call runs in a daemon thread of its own, the caller waits at most
`timeout` seconds, and while one call is stuck the next callers wait on that same call instead
of starting another.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

T = TypeVar("T")


class Unanswered(Exception):
    """The call raised, or did not return within its deadline."""


class SingleFlight(Generic[T]):
    """`call()` with a deadline; at most one call in flight at a time."""

    def __init__(self, call: Callable[[], T], timeout_seconds: float, name: str) -> None:
        self._call = call
        self._timeout = timeout_seconds
        self._name = name
        self._lock = threading.Lock()
        self._pending: Future[T] | None = None

    def _future(self) -> Future[T]:
        with self._lock:
            if self._pending is None or self._pending.done():
                future: Future[T] = Future()

                def work() -> None:
                    try:
                        future.set_result(self._call())
                    except BaseException as exc:  # handed to the waiting caller
                        future.set_exception(exc)

                # A daemon thread: a call stuck on a dead connection must not keep us alive.
                threading.Thread(target=work, name=self._name, daemon=True).start()
                self._pending = future
            return self._pending

    def result(self) -> T:
        """The call's value; Unanswered when it raised or outlived the deadline."""
        try:
            return self._future().result(timeout=self._timeout)
        except FutureTimeout:
            raise Unanswered(f"no answer within {self._timeout:g} s") from None
        except Exception as exc:
            raise Unanswered(type(exc).__name__) from exc

    async def aresult(self) -> T:
        """`result()` for async code: the event loop is never blocked."""
        answer = asyncio.shield(asyncio.wrap_future(self._future()))
        try:
            return await asyncio.wait_for(answer, self._timeout)
        except TimeoutError:
            raise Unanswered(f"no answer within {self._timeout:g} s") from None
        except Exception as exc:
            raise Unanswered(type(exc).__name__) from exc
