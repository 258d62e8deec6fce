"""Counters of what the enrichment client did, per endpoint, safe to bump from many threads."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    """Per-endpoint counters: HTTP attempts made, retries taken, and 429 answers received."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str, endpoint: str) -> None:
        with self._lock:
            getattr(self, counter)[endpoint] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A plain, JSON-ready copy."""
        with self._lock:
            return {
                "calls": dict(self.calls),
                "retries": dict(self.retries),
                "rate_limited": dict(self.rate_limited),
            }
