"""What every stage needs, passed in explicitly: config, store, API client, connectors, clock."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from connectors.base import Connector
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config import Config, SourceConfig
from crm_sync.enrichment.input_rules import InputRules
from crm_sync.enrichment.models import BulkRequest, EnrichmentResult

if TYPE_CHECKING:
    from crm_sync.store.store import Store


class EnrichmentAPI(Protocol):
    """The part of the enrichment client the pipeline uses; tests may pass a small fake."""

    def credits(self) -> int: ...

    def submit(
        self,
        request: BulkRequest,
        *,
        on_send: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> str: ...

    def get_result(
        self, enrichment_id: str, *, force_results: bool = False
    ) -> EnrichmentResult: ...


class Progress(Protocol):
    """Told as work advances, for a progress bar; the default does nothing."""

    def advance(self, source: str, stage: str, n: int) -> None: ...


class NoProgress:
    def advance(self, source: str, stage: str, n: int) -> None:
        """Nothing to show."""


#: For tests only: the host name this process puts in its owner id (two processes on one
#: machine then behave like replicas on two hosts: neither can judge the other by its pid).
HOSTNAME_ENV = "CRM_SYNC_HOSTNAME"


def host_name() -> str:
    """This host's name as owner ids carry it (`CRM_SYNC_HOSTNAME` overrides it in tests)."""
    return os.environ.get(HOSTNAME_ENV) or socket.gethostname()


def new_owner_id() -> str:
    """`host:pid:random`: unique per process, and tells a same-host successor whether we died."""
    return f"{host_name()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when the owner ran on this host and its process is gone (after SIGKILL, say).

    Owners on other hosts are never judged here: their leases simply expire.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != host_name() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Context:
    """The collaborators of one engine; built by the CLI, the daemon, the demo or a test."""

    config: Config
    store: Store
    client: EnrichmentAPI
    connectors: dict[str, Connector]
    owner: str = field(default_factory=new_owner_id)
    # The one clock of the engine; the wiring hands the same one to the store.
    clock: Clock = SYSTEM_CLOCK
    webhook_url: str | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    progress: Progress = field(default_factory=NoProgress)
    # The provider's input rules, stricter once the API refused what the docs allow.
    input_rules: InputRules | None = None

    def __post_init__(self) -> None:
        if self.input_rules is None:
            self.input_rules = InputRules(self.config.enrichment.provider)

    @property
    def rules(self) -> InputRules:
        """The input rules in force (set by __post_init__)."""
        assert self.input_rules is not None
        return self.input_rules

    def source_config(self, name: str) -> SourceConfig:
        for source in self.config.sources:
            if source.name == name:
                return source
        raise KeyError(name)
