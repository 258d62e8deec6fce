"""Transactions: retried when the database picks them as deadlock victims; secrets stay out."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError

from crm_sync.logs import scrub
from crm_sync.store import Store
from crm_sync.store.engine import Transactor


class _DriverError(Exception):
    """Stands in for a driver exception carrying a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _failing(times: int, sqlstate: str, calls: list[int]) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        calls.append(1)
        conn.execute(text("SELECT 1"))
        if len(calls) <= times:
            raise DBAPIError("UPDATE ...", None, _DriverError(sqlstate))
        return len(calls)

    return work


def test_deadlock_victim_is_run_again() -> None:
    """A transaction aborted as a deadlock victim is run again from the start and succeeds."""
    engine = create_engine("sqlite://")
    calls: list[int] = []
    assert Transactor(engine).run(_failing(2, "40P01", calls)) == 3
    engine.dispose()


def test_other_errors_are_not_retried() -> None:
    """Any other database error reaches the caller at once."""
    engine = create_engine("sqlite://")
    calls: list[int] = []
    with pytest.raises(DBAPIError):
        Transactor(engine).run(_failing(1, "23505", calls))
    assert len(calls) == 1
    engine.dispose()


def test_password_in_url_never_surfaces() -> None:
    """A failed connection names no password, and the password is registered for log scrubbing."""
    password = "s3cr3t-Pa55word"
    with pytest.raises(DBAPIError) as caught:
        Store.open(f"postgresql://crm:{password}@127.0.0.1:1/state?connect_timeout=2")
    text_seen = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert password not in text_seen
    assert password not in scrub(f"url postgresql://crm:{password}@h/db")
