"""The source lease: one process submits for a source at a time, and a dead one is replaced fast.

A lease is a row (name, owner, expires_at). The holder renews it by heartbeat, every third of
its TTL (60 s by default, `state.lease_ttl_seconds`), from a thread, so a long wait (a rate
limiter slot, a 429 backoff spanning a whole rate window) never lets it lapse while the holder
lives. A holder that dies (kill -9, a lost node) stops renewing, and its lease expires within
one TTL: another replica takes over then, on any host.

Holders are judged by the lease alone, except on the same host: a holder whose owner id names
this host and a pid that is gone is dead for sure, and its lease is taken at once. An owner on
another host (or reporting another host name, see `context.HOSTNAME_ENV`) is never judged by its
pid: pids mean nothing across hosts.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import TracebackType

from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context, owner_is_dead
from crm_sync.store.store import Store

DEFAULT_LEASE_TTL = timedelta(seconds=60)


def source_lease_name(source: str) -> str:
    return f"source:{source}"


def lease_ttl(ctx: Context) -> timedelta:
    """The TTL of this process's leases (`state.lease_ttl_seconds`)."""
    return timedelta(seconds=ctx.config.state.lease_ttl_seconds)


def claim_lease(ctx: Context) -> timedelta:
    """How long a claim on a batch (poll, write-back) holds: 1.5 lease TTLs, 90 s by default.

    A claim is not renewed by heartbeat: one poll or one batch's write-back takes seconds, so 1.5
    TTLs leave room for CRM backoffs while a dead holder's batches still pass to a replica on
    another host within 120 s (90 s plus one poll interval of 30 s).
    """
    return lease_ttl(ctx) * 1.5


def take_source_lease(ctx: Context, name: str) -> bool:
    """Take the lease, or take it over from a holder on this host whose process is gone."""
    ttl = lease_ttl(ctx)
    if ctx.store.acquire_lease(name, ctx.owner, ttl):
        return True
    holder = ctx.store.lease_holder(name)
    if holder and owner_is_dead(holder):
        return ctx.store.steal_lease(name, holder=holder, owner=ctx.owner, ttl=ttl)
    return False


class LeaseHeartbeat:
    """Renews a held lease every `ttl / 3` until stopped; `lost` is set if renewal failed."""

    def __init__(self, store: Store, name: str, owner: str, ttl: timedelta) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.ttl = ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease:{name}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                held = self.store.acquire_lease(self.name, self.owner, self.ttl)
            except Exception:  # the store is down: try again next beat, the TTL gives us time
                get_logger(lease=self.name).warning("lease_renewal_failed", exc_info=True)
                continue
            if not held:
                get_logger(lease=self.name).error("lease_lost", owner=self.owner)
                self.lost.set()
                return
