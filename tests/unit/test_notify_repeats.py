"""A lasting condition is told when it starts, then every `notify.repeat_hours`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sync.outputs.notify_repeats import is_due
from crm_sync.store.records import RunRow

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BUDGET = {"name": "hs", "status": "ok", "exit_code": 0, "message": "budget reached (per_run)"}
FAILING = {"name": "hs", "status": "failed", "exit_code": 1, "message": "SOQL refused"}
FINE = {"name": "hs", "status": "ok", "exit_code": 0, "message": ""}


def _run(index: int, source: dict[str, Any], minutes: int = 15) -> RunRow:
    finished = T0 + timedelta(minutes=minutes * index)
    report = {"exit_code": source["exit_code"], "sources": [source]}
    return RunRow(f"r{index}", "o", finished, finished, "ok", report)


def _told(history: list[RunRow], event: str, repeat_hours: float = 1.0) -> list[int]:
    """Which runs would tell `event`, each judged with the runs before it (newest first)."""
    told = []
    for index, run in enumerate(history):
        earlier = list(reversed(history[: index + 1]))
        if run.finished_at is None or (run.report or {}).get("dry_run"):
            continue  # such runs tell nothing themselves
        if is_due(
            event, "hs", earlier, this_run=run.id, now=run.finished_at, repeat_hours=repeat_hours
        ):
            told.append(index)
    return told


def test_a_budget_reached_every_run_is_told_once_an_hour() -> None:
    """Every 15 minutes for 3 hours: told at 0, then at the runs that cross 1 h and 2 h."""
    history = [_run(i, BUDGET) for i in range(13)]
    assert _told(history, "budget_reached") == [0, 4, 8, 12]


def test_a_condition_that_ends_and_comes_back_is_news_again() -> None:
    history = [_run(0, FAILING), _run(1, FAILING), _run(2, FINE), _run(3, FAILING)]
    assert _told(history, "failed") == [0, 3]


def test_zero_tells_every_run() -> None:
    history = [_run(i, FAILING) for i in range(4)]
    assert _told(history, "failed", repeat_hours=0) == [0, 1, 2, 3]


def test_unfinished_and_dry_runs_do_not_break_or_make_a_streak() -> None:
    running = RunRow("x", "o", T0, None, "running", None)
    dry = RunRow("d", "o", T0, T0, "ok", {"dry_run": True, "sources": [FINE]})
    history = [_run(0, FAILING), running, dry, _run(1, FAILING)]
    assert _told(history, "failed") == [0]
    assert _told([running, dry, _run(1, FAILING)], "failed") == [2]


def test_a_standing_in_doubt_batch_is_told_once_a_day() -> None:
    """Every run ends with the same batch in doubt: told at the first run, then after 24 h."""
    doubt = {"batch": "b-1", "source": "hs", "name": "crm-sync hs b-1", "contacts": 3}
    history = []
    for index in range(0, 26 * 4, 4):  # a run every hour for 26 hours
        run = _run(index, FINE)
        assert run.report is not None
        run.report["in_doubt"] = [doubt]
        history.append(run)
    told = _told(history, "in_doubt", repeat_hours=24)
    assert told == [0, 24]
