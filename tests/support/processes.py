"""Fixtures and helpers of the end-to-end daemon tests: worlds, PostgreSQL, subprocess daemons.

Everything talks over real loopback sockets: the emulators run in BackgroundServer threads,
the daemon runs either in-process (`Daemon`) or as a real `crm-sync run` subprocess.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import IO, Any

import yaml

from connectors.base import Contact
from crm_sync.enrichment.input_rules import named_identity_problem
from crm_sync.rules.policies import build_request, to_e164
from crm_sync.sandbox.people import generate_people
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store

ROOT = Path(__file__).resolve().parents[2]
ACCEPTED_EMAIL_STATUSES = frozenset({"DELIVERABLE", "HIGH_PROBABILITY"})
PENDING_STATES = ("planned", "sending", "submitted", "received")
# The CRM field names of each world source, by logical field.
CRM_FIELDS = {
    "hubspot": {"email": "email", "phone": "phone"},
    "salesforce": {"email": "Email", "phone": "MobilePhone"},
}


# -- waiting ---------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for: {what}")


def free_port() -> int:
    """A loopback port nobody listens on now (for a daemon whose public URL must be known)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- store queries ---------------------------------------------------------------------------


def store_snapshot(url: str) -> tuple[dict[str, int], set[str]]:
    """(batch count per state, record ids of in_doubt batches), read with a short-lived store."""
    store = Store.open(url)
    try:
        in_doubt = {c.record_id for b in store.in_doubt_batches() for c in b.contacts}
        return store.batches_by_state(), in_doubt
    finally:
        store.close()


def nothing_pending(store: Store, world: SandboxWorld) -> bool:
    """No batch planned, sending, submitted or received, and every API job is over."""
    states = store.batches_by_state()
    if any(states.get(state, 0) for state in PENDING_STATES):
        return False
    return not pending_jobs(world)


def pending_jobs(world: SandboxWorld) -> list[str]:
    """Enrichment ids whose job the emulator has not finished yet."""
    terminal = {"FINISHED", "CANCELED", "CREDITS_INSUFFICIENT"}
    emulator = world.enrichment
    return [j for j in emulator.job_ids() if emulator.result_body(j)["status"] not in terminal]


# -- what the world should look like ---------------------------------------------------------


def expected_candidates(count: int, seed: int, *, linkedin: bool = True) -> int:
    """How many seeded people the daemon should submit: a field missing, identity, no opt-out.

    `linkedin=False` for a source that reads no LinkedIn field (the world's Salesforce source).
    """
    eligible = 0
    for person in generate_people(count, seed):
        contact = Contact(
            id=str(person.index),
            first_name=person.first_name,
            last_name=person.last_name,
            company=person.company,
            domain=person.domain,
            linkedin_url=person.linkedin_url if linkedin else None,
        )
        missing = person.email is None or person.phone is None
        if missing and not person.opted_out and _refused_by_strict_api(contact) is None:
            eligible += 1
    return eligible


def world_candidates(world: SandboxWorld) -> int:
    """The expected submissions of both CRMs of `world` (their seeds as SandboxWorld sets them)."""
    opts = world.options
    return expected_candidates(opts.hubspot_contacts, opts.seed) + expected_candidates(
        opts.salesforce_contacts, opts.seed + 100, linkedin=False
    )


def assert_every_found_value_written(
    world: SandboxWorld, exclude: AbstractSet[str] = frozenset()
) -> int:
    """Every accepted email and valid phone of every result is in its CRM; returns the count."""
    records = {"hubspot": world.hubspot.records, "salesforce": world.salesforce.records}
    checked = 0
    for enrichment_id in world.enrichment.job_ids():
        for item in world.enrichment.internal_result(enrichment_id).get("datas", []):
            source, rid = item["custom"]["source"], item["custom"]["crm_id"]
            if rid in exclude:
                continue
            record, fields, found = records[source][rid], CRM_FIELDS[source], item["contact"]
            email = found.get("most_probable_email")
            if email and found.get("most_probable_email_status") in ACCEPTED_EMAIL_STATUSES:
                assert record[fields["email"]] == email, (source, rid)
                checked += 1
            phones = found.get("phones") or [{}]
            phone = to_e164(found.get("most_probable_phone"), phones[0].get("region"))
            if phone:
                assert record[fields["phone"]] == phone, (source, rid)
                checked += 1
    return checked


def submitted_once(world: SandboxWorld) -> Counter[str]:
    """Submissions per contact; asserts none was submitted twice."""
    counts = world.enrichment.submissions_per_contact()
    twice = {key: n for key, n in counts.items() if n > 1}
    assert not twice, f"submitted more than once: {twice}"
    return counts


# -- `crm-sync` subprocesses -----------------------------------------------------------------


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """`config` as YAML at `path`."""
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class DaemonProcess:
    """A `crm-sync run` subprocess whose JSON log lines (stderr) are read by a thread."""

    def __init__(
        self,
        config_path: Path,
        cwd: Path,
        name: str = "daemon",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("CRM_SYNC_FAILPOINT", None)
        env.update(extra_env or {})
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crm_sync.cli", "run", "--config", str(config_path)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.raw: list[str] = []
        self.seen: Counter[str] = Counter()
        assert self.process.stderr is not None
        self._pump = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._pump.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.raw.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.seen[str(event.get("event"))] += 1
                self.events.put(event)

    def wait_event(self, names: set[str], timeout: float) -> dict[str, Any]:
        """The next log event named in `names`; fails with the log tail after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                if self.process.poll() is not None and self.events.empty():
                    break
                continue
            if event.get("event") in names:
                return event
        raise AssertionError(f"{self.name}: none of {names} within {timeout}s:\n{self.tail()}")

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM (twice: the second is harmless); (exit code, seconds until it exited)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        """Kill the process if it still runs, and stop reading its output."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._pump.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def output(self) -> str:
        return "".join(self.raw)

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]


def run_once(config_path: Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`crm-sync --once --json` to completion."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CRM_SYNC_FAILPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(config_path)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _refused_by_strict_api(contact: Contact) -> str | None:
    """Why the strict emulator (the tests' default) refuses this contact's request item."""
    return named_identity_problem(build_request(contact, ("contact.emails",), "any").wire())
