"""The daemon's fresh-lane thread: ticks the lane, feeds its metrics, stops with the daemon.

It runs beside the scheduled cycle, not under the daemon's work lock: a long full scan of a
backlog must not hold back a new contact. The store's claims keep the two lanes from sending a
contact twice; the enrichment client's shared limiter keeps them, together, under the API's
limit. With `schedule.fresh_scan_seconds: 0` the lane does not run and the open batches a
previous process left are given back (claims cleared, no cooldown), so nothing stays stuck.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from crm_sync.logs import get_logger
from crm_sync.outputs.fresh_metrics import FreshMetrics, fresh_metrics
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.fresh import FreshLane

MAX_TICK_SECONDS = 1.0
MIN_TICK_SECONDS = 0.05


def _log() -> Any:
    return get_logger(component="daemon.fresh_lane")


def tick_seconds(ctx: Context) -> float:
    """A sixtieth of the shorter period (1 s at the defaults), so a time-scaled run ticks in
    proportion; never more than a second, never less than MIN_TICK_SECONDS."""
    schedule, run = ctx.config.schedule, ctx.config.run
    shorter = min(schedule.fresh_scan_seconds, run.max_batch_wait_seconds)
    return max(MIN_TICK_SECONDS, min(MAX_TICK_SECONDS, shorter / 60))


class FreshLaneThread:
    """`start()` / `stop()`; a no-op (after giving back open batches) when the lane is off."""

    def __init__(self, ctx: Context, metrics: Metrics) -> None:
        self.ctx = ctx
        self.lane = FreshLane(ctx)
        self.metrics: FreshMetrics = fresh_metrics(metrics)
        self.enabled = ctx.config.schedule.fresh_scan_seconds > 0 and bool(self.lane.sources())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fresh-lane", daemon=True)
        self._unbind = self.metrics.bind(ctx)
        self._settled_since: datetime = ctx.clock.now()

    def start(self) -> None:
        if not self.enabled:
            self._give_back_open_batches()
            return
        _log().info("fresh_lane_started", sources=[s.name for s in self.lane.sources()])
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self._unbind()

    def _give_back_open_batches(self) -> None:
        store = self.ctx.store.open_batches
        for info in store.all_open():
            if store.drop(info.batch_id, "not sent: the fresh lane is off"):
                _log().warning("open_batch_given_back", source=info.source, contacts=info.contacts)

    def _loop(self) -> None:
        pause = tick_seconds(self.ctx)
        while not self._stop.is_set() and not self.ctx.stopping.is_set():
            try:
                self.lane.tick()
                self.observe_settled()
            except Exception:  # the next tick tries again; the daemon lives on
                _log().exception("fresh_lane_tick_failed")
            self._stop.wait(pause)

    def observe_settled(self) -> None:
        settled = self.ctx.store.open_batches.settled_since(self._settled_since)
        if settled:
            self.metrics.observe_settled(settled)
            self._settled_since = max(s.written_at for s in settled)
