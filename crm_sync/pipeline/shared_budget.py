"""One budget per source while a full cycle submits it, shared with the fresh lane.

The full cycle computes its budget once, when it starts a source (balance less reserve less what
is in flight, `per_run`, `per_day`). A fresh batch sealed while that cycle runs must draw from
the same budget, or the two lanes together could plan past the credit reserve by a batch. The
cycle registers its budget here for the time it submits; the fresh lane takes from it when one
is registered for the source in this process, under the budget's own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm_sync.pipeline.budget import Budget

if TYPE_CHECKING:
    from crm_sync.pipeline.context import Context


@dataclass
class SharedBudget(Budget):
    """A Budget whose take and give_back may be called from two threads."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, cost: int) -> bool:
        with self._lock:
            return super().take(cost)

    def give_back(self, cost: int) -> None:
        with self._lock:
            super().give_back(cost)


_running: dict[tuple[int, str], SharedBudget] = {}
_registry_lock = threading.Lock()


@contextmanager
def running_budget(ctx: Context, source: str, budget: Budget) -> Iterator[SharedBudget]:
    """`budget` as the source's shared budget for the duration of the block."""
    shared = SharedBudget(dict(budget.ceilings), budget.reserved, budget.contacts_left)
    key = (id(ctx), source)
    with _registry_lock:
        _running[key] = shared
    try:
        yield shared
    finally:
        with _registry_lock:
            if _running.get(key) is shared:
                del _running[key]


def budget_in_use(ctx: Context, source: str) -> SharedBudget | None:
    """The budget a full cycle of this process is submitting `source` under, if any."""
    with _registry_lock:
        return _running.get((id(ctx), source))
