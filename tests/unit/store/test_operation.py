"""Store operations are written once, in their module, and listed by the classes that run them."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from crm_sync.store import Store, planning, transitions
from crm_sync.store.contact_results import ContactResults
from crm_sync.store.open_batches import OpenBatchStore
from crm_sync.store.operation import Operation


@pytest.mark.parametrize("cls", [Store, OpenBatchStore, ContactResults])
def test_every_operation_says_what_it_does(cls: type) -> None:
    """Each public operation carries the docstring of the one function that implements it."""
    operations = {n: a for n, a in vars(cls).items() if isinstance(a, Operation)}
    assert operations
    for name, operation in operations.items():
        assert operation.__name__ == name
        assert operation.__doc__, f"{cls.__name__}.{name} has no docstring"


def test_a_listed_operation_is_its_function() -> None:
    """`Store.plan_batch` is `planning.plan_batch` bound to a transaction, docstring and all."""
    assert Store.plan_batch.__doc__ == planning.plan_batch.__doc__
    assert Store.mark_written.__doc__ == transitions.mark_written.__doc__
    assert not any(
        inspect.isfunction(a) and a.__doc__ == planning.plan_batch.__doc__
        for a in vars(Store).values()
    )


def test_a_bound_operation_runs_in_one_transaction_with_the_store_time() -> None:
    """On an instance, an operation hands its function the connection and `now` of the call."""
    seen: list[tuple[object, object, tuple[object, ...]]] = []

    def work(conn: object, now: object, *args: object) -> str:
        seen.append((conn, now, args))
        return "done"

    class Runner:
        op = Operation(work, writes=True)

        def _write(self, run: Callable[[object, object], object]) -> object:
            return run("conn", "now")

        def _read(self, run: Callable[[object, object], object]) -> object:
            raise AssertionError("a writing operation must not read")

    assert Runner().op(1, 2) == "done"
    assert seen == [("conn", "now", (1, 2))]
