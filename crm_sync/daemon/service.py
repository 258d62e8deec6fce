"""The daemon: HTTP server, scheduler and write-back worker around one Context.

    start()  -> HTTP server bound (port logged), scheduler started (first cycle now), worker up
    signals.put(name)  (from a SIGTERM / SIGINT handler) or request_stop()
             -> ctx.stopping set, no new work taken; a second request is only logged
    wait()   -> blocks until stop is requested, then shutdown(): in-flight work gets the grace,
                then the HTTP server stops. The caller closes the Context.

One lock serialises the cycle, the polling job and webhook-triggered write-back, so one process
never runs two of them at once (several replicas are kept apart by the store's leases).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from crm_sync.daemon.fresh_lane import FreshLaneThread
from crm_sync.daemon.health import ActivityProgress, CycleCollector, CycleHealth
from crm_sync.daemon.scheduler import Scheduler
from crm_sync.daemon.webapp import Hooks, build_app
from crm_sync.errors import RunFailed
from crm_sync.http_server import BackgroundServer
from crm_sync.logs import get_logger
from crm_sync.outputs.after_run import after_run
from crm_sync.outputs.history import read_health
from crm_sync.outputs.metrics import METRICS, Metrics
from crm_sync.outputs.notify import Notifier, failure_notice
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.report import SourceCounts


def _log() -> Any:
    """Bound at call time: a module-level logger would miss `configure_logging`."""
    return get_logger(component="daemon")


WORKER_TICK_SECONDS = 0.5


class Daemon:
    """`crm-sync run` as an object, so tests and `run.py` start and stop it the same way."""

    def __init__(
        self,
        ctx: Context,
        *,
        metrics: Metrics = METRICS,
        host: str | None = None,
        port: int | None = None,
        scheduler_options: dict[str, Any] | None = None,
        cycle: Callable[[Context], None] | None = None,
        health_slack_seconds: float = 5.0,
    ) -> None:
        self.ctx = ctx
        self.metrics = metrics
        settings = ctx.config.webhook
        self._work_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop_requests = 0
        self.signals: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._cycle_body = cycle or _default_cycle(metrics, Notifier(ctx.config.notify))
        self.scheduler = Scheduler(
            ctx.config.schedule,
            cycle=self.run_cycle_job,
            collect=self.poll_job,
            metrics=metrics,
            clock=ctx.clock,
            **(scheduler_options or {}),
        )
        self.health = CycleHealth(
            self.scheduler.cycle_trigger,
            ctx.config.schedule.health_missed_cycles,
            slack_seconds=health_slack_seconds,
            clock=ctx.clock,
        )
        ctx.progress = ActivityProgress(ctx.progress, self.health)
        hooks = Hooks(
            ready=lambda: self.scheduler.running,
            on_stored=self._wake.set,
            healthy=self.health.check,
        )
        self.app = build_app(ctx, metrics, hooks)
        self.server = BackgroundServer(  # open connections get 5 s once SIGTERM's grace is over
            self.app,
            host or settings.host,
            settings.port if port is None else port,
            graceful_shutdown=5,
        )
        self._worker = threading.Thread(target=self._worker_loop, name="writeback", daemon=True)
        self.fresh = FreshLaneThread(ctx, metrics)  # the fresh lane, beside the cycle
        self._unbind: Callable[[], None] = lambda: None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        """Serve HTTP, then start the scheduler (which runs the first cycle now) and the worker."""
        settings = self.ctx.config.webhook
        if settings.enabled and not settings.require_signature:
            _log().warning("webhook_signature_not_required", path=settings.path)
        self._unbind = self.metrics.bind_context(self.ctx, CycleCollector(self.health))
        try:
            self.metrics.observe_health(read_health(self.ctx.store))
        except Exception as exc:  # readiness reports the store; the first cycle tries again
            _log().warning("run_history_unavailable", error=type(exc).__name__)
        self.server.start()
        _log().info("webhook_listening", host=self.server.host, port=self.server.port)
        self._worker.start()
        self.scheduler.start()
        self.fresh.start()

    def request_stop(self, reason: str = "requested") -> None:
        """Stop taking work; a second request is only logged. Not for signal handlers."""
        self._stop_requests += 1
        if self._stop_requests > 1:
            _log().info("stop_already_requested", reason=reason, requests=self._stop_requests)
            return
        _log().info("stop_requested", reason=reason)
        self.ctx.stopping.set()
        self._stop.set()
        self._wake.set()

    def wait(self) -> bool:
        """Block until a stop is requested, then shut down; True when in-flight work finished.

        Signal handlers only put the signal's name on `self.signals` (SimpleQueue.put is safe
        in a signal handler; taking a lock there could deadlock the main thread).
        """
        while not self._stop.is_set():
            try:
                reason = self.signals.get(timeout=WORKER_TICK_SECONDS)
            except queue.Empty:
                continue
            self.request_stop(reason)
        clean = self.shutdown()
        while not self.signals.empty():
            self.request_stop(self.signals.get())
        return clean

    def shutdown(self) -> bool:
        """Stop scheduling, give in-flight work the grace, stop HTTP; True on a clean stop."""
        self.ctx.stopping.set()
        self._stop.set()
        self._wake.set()
        self.scheduler.shutdown()
        self.fresh.stop(timeout=self.ctx.config.schedule.shutdown_grace_seconds)
        grace = self.ctx.config.schedule.shutdown_grace_seconds
        lock = self._work_lock
        clean = lock.acquire(timeout=grace) if grace > 0 else lock.acquire(blocking=False)
        if clean:
            self._work_lock.release()
        else:
            _log().warning("shutdown_grace_expired", grace_seconds=grace)
        self.server.stop()
        self._worker.join(timeout=2)
        self._unbind()
        _log().info("daemon_stopped", clean=clean)
        return clean

    def run_cycle_job(self) -> None:
        """The scheduled cycle; waits for a write-back in progress, never overlaps one."""
        if self.ctx.stopping.is_set():
            return
        with self._work_lock:
            if self.ctx.stopping.is_set():
                return
            self.health.cycle_started()
            try:
                self._cycle_body(self.ctx)
            finally:
                self.health.cycle_finished()

    def poll_job(self) -> None:
        """The polling fallback; skipped when the cycle (which collects too) holds the lock."""
        if self.ctx.stopping.is_set() or not self._work_lock.acquire(blocking=False):
            return
        try:
            self._collect()
        finally:
            self._work_lock.release()

    def _worker_loop(self) -> None:
        """Write back soon after a webhook stored a result, outside the request."""
        while not self._stop.is_set():
            if not self._wake.wait(WORKER_TICK_SECONDS):
                continue
            self._wake.clear()
            while not self._stop.is_set():
                if self._work_lock.acquire(timeout=WORKER_TICK_SECONDS):
                    try:
                        if not self.ctx.stopping.is_set():
                            self._collect()
                    finally:
                        self._work_lock.release()
                    break

    def _collect(self) -> None:
        counts: dict[str, SourceCounts] = {}
        try:
            collect_and_write(self.ctx, counts)
        except Exception:  # a failed collect is retried by the next poll; the daemon lives on
            _log().exception("collect_failed")
        finally:
            for source, delta in counts.items():
                self.metrics.observe_counts(source, delta)


def _default_cycle(metrics: Metrics, notifier: Notifier) -> Callable[[Context], None]:
    def cycle(ctx: Context) -> None:
        started = ctx.clock.monotonic()
        failure: str | None = None
        try:
            report = run_cycle(ctx, wait=False)
        except RunFailed as failed:  # recorded with its reason; the next tick tries again
            report, failure = failed.report, str(failed)  # type: ignore[assignment]
            _log().error("cycle_failed", reason=failure, exit_code=failed.exit_code)
        except Exception as exc:  # the next tick tries again; the error is in the log and metrics
            metrics.observe_run_error(ctx.clock.monotonic() - started)
            _log().exception("cycle_failed")
            notifier.send([failure_notice(f"{type(exc).__name__}: {exc}")])
            return
        seconds = ctx.clock.monotonic() - started
        metrics.observe_run(report, seconds)
        after_run(ctx, report, seconds, notifier=notifier, metrics=metrics, failure=failure)

    return cycle
