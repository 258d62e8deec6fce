"""Crash injection for tests: `CRM_SYNC_FAILPOINT=after_plan` kills the process with SIGKILL there.

Several names may be given, comma-separated. A name may carry a count, `after_submit:3`, to die
the third time that point is reached. Production never sets the variable; the check costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "CRM_SYNC_FAILPOINT"
_hits: dict[str, int] = {}
_lock = threading.Lock()


def _armed() -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in os.environ.get(ENV, "").split(","):
        name, _, count = item.strip().partition(":")
        if name:
            armed[name] = int(count) if count.isdigit() else 1
    return armed


def failpoint(name: str) -> None:
    """Die here, at once and without cleanup, when the environment arms this point."""
    armed = _armed()
    if name not in armed:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] >= armed[name]:
            os.kill(os.getpid(), signal.SIGKILL)
