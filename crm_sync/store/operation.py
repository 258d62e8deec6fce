"""Store methods written once: a SQL function of the store becomes a method that runs it.

Each operation of the store is a plain function of a connection (and the store's `now`) in the
module of its concern: planning, transitions, collecting, reports. Other operations call it inside
their own transaction; a class lists it once, `plan_batch = write(planning.plan_batch)`, and
gets a method of the same name, parameters (without the connection and `now`) and docstring, run
in one transaction of its own. `write` and `read` take `(conn, now, ...)` functions; `lookup`
takes `(conn, ...)` ones, reads that do not depend on the time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from sqlalchemy import Connection

P = ParamSpec("P")
R = TypeVar("R")

Work = Callable[[Connection, datetime], Any]


class Transactions(Protocol):
    """What an operation runs in: one transaction per call, given the connection and `now`."""

    def _write(self, work: Work) -> Any: ...

    def _read(self, work: Work) -> Any: ...


class Operation(Generic[P, R]):
    """A store function exposed as a method: on an instance, it runs in one transaction."""

    def __init__(self, fn: Callable[Concatenate[Connection, datetime, P], R], *, writes: bool):
        self._fn = fn
        self._writes = writes
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.__name__ = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Operation[P, R]: ...

    @overload
    def __get__(self, obj: Transactions, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(
        self, obj: Transactions | None, owner: type[Any]
    ) -> Operation[P, R] | Callable[P, R]:
        if obj is None:
            return self
        fn = self._fn
        run = obj._write if self._writes else obj._read

        def method(*args: P.args, **kwargs: P.kwargs) -> R:
            result: R = run(lambda conn, now: fn(conn, now, *args, **kwargs))
            return result

        method.__doc__ = self.__doc__
        method.__name__ = self.__name__
        return method


def write(fn: Callable[Concatenate[Connection, datetime, P], R]) -> Operation[P, R]:
    """`fn(conn, now, ...)` as a method run in one writing transaction."""
    return Operation(fn, writes=True)


def read(fn: Callable[Concatenate[Connection, datetime, P], R]) -> Operation[P, R]:
    """`fn(conn, now, ...)` as a method run in one read-only transaction."""
    return Operation(fn, writes=False)


def lookup(fn: Callable[Concatenate[Connection, P], R]) -> Operation[P, R]:
    """`fn(conn, ...)`, a read that does not depend on the time, as a method."""

    def at(conn: Connection, _now: datetime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(conn, *args, **kwargs)

    at.__doc__ = fn.__doc__
    at.__name__ = fn.__name__
    return Operation(at, writes=False)
