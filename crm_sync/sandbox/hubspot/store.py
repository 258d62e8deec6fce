"""The HubSpot emulator's contacts: properties, an email index, a lagging search view, writes.

Thread-safe: the ASGI app runs in a server thread while a test reads and edits records.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sync.clock import Clock
from crm_sync.sandbox.hubspot.search import SearchRequest, sort_key

STANDARD_PROPERTIES = (
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
    "website",
    "hs_linkedin_url",
    "hs_additional_emails",
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
)
DEFAULT_PROPERTIES = ("firstname", "lastname", "email", "createdate", "lastmodifieddate")
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_additional_emails"})
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
SEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MAX_CHANGELOG = 20_000


def iso(moment: datetime) -> str:
    """HubSpot's timestamp style: `2024-01-01T00:00:00.000Z`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One record's properties as changed by one successful API write."""

    at: datetime
    record_id: str
    properties: dict[str, str | None] = field(default_factory=dict)


class ContactStore:
    """Contacts by id (increasing integers as strings), with what search sees `lag` seconds late."""

    def __init__(self, *, clock: Clock, search_lag: float, extra_properties: Iterable[str]) -> None:
        self._clock = clock
        self._lag = search_lag
        self._lock = threading.RLock()
        self._props: dict[str, dict[str, str | None]] = {}
        self._created: dict[str, datetime] = {}
        self._updated: dict[str, datetime] = {}
        self._search: dict[str, dict[str, str | None]] = {}
        self._pending: deque[tuple[float, str, dict[str, str | None]]] = deque()
        self._email_owner: dict[str, str] = {}
        self._cache: dict[str, tuple[int, list[str]]] = {}
        self._version = 0
        self._changed: list[str] = []  # record ids made searchable, one per version
        self._changed_base = 0  # the version just before self._changed[0]
        self._next_id = 101
        self.known = set(STANDARD_PROPERTIES) | set(extra_properties)
        self.writes: list[WriteRecord] = []

    # -- records ---------------------------------------------------------------------------
    def add(self, properties: dict[str, str | None], created: datetime | None = None) -> str:
        """Create a record now (or at `created`) and return its id."""
        with self._lock:
            record_id = str(self._next_id)
            self._next_id += 1
            when = created or self._clock.now()
            self._created[record_id] = self._updated[record_id] = when
            props: dict[str, str | None] = {k: v or None for k, v in properties.items()}
            props.update(hs_object_id=record_id, createdate=iso(when), lastmodifieddate=iso(when))
            self.known.update(props)
            self._props[record_id] = props
            self._index_email(record_id, None, props.get("email"))
            self._publish(record_id)
            return record_id

    def exists(self, record_id: str) -> bool:
        with self._lock:
            return record_id in self._props

    def snapshot(self) -> dict[str, dict[str, str | None]]:
        """A copy of every record's properties."""
        with self._lock:
            return {rid: dict(props) for rid, props in self._props.items()}

    def get(self, record_id: str) -> dict[str, str | None] | None:
        with self._lock:
            props = self._props.get(record_id)
            return dict(props) if props is not None else None

    def email_owner(self, email: str) -> str | None:
        with self._lock:
            return self._email_owner.get(email.strip().casefold())

    def apply(self, record_id: str, changes: dict[str, str | None], *, by_api: bool) -> None:
        """Set properties ("" or None clears); an API write is recorded in `writes`."""
        with self._lock:
            props = self._props[record_id]
            clean = {k: (v or None) for k, v in changes.items()}
            self._index_email(record_id, props.get("email"), clean.get("email", props.get("email")))
            props.update(clean)
            self.known.update(clean)
            now = self._clock.now()
            self._updated[record_id] = now
            props["lastmodifieddate"] = iso(now)
            if by_api:
                self.writes.append(WriteRecord(now, record_id, dict(clean)))
            self._publish(record_id)

    def _index_email(self, record_id: str, old: str | None, new: str | None) -> None:
        if old and self._email_owner.get(old.casefold()) == record_id:
            del self._email_owner[old.casefold()]
        if new:
            self._email_owner[new.strip().casefold()] = record_id

    def _publish(self, record_id: str) -> None:
        """Make the record's current values visible to search, now or after the lag."""
        snapshot = dict(self._props[record_id])
        if self._lag <= 0:
            self._search[record_id] = snapshot
            self._bump(record_id)
        else:
            self._pending.append((self._clock.monotonic() + self._lag, record_id, snapshot))

    def _bump(self, record_id: str) -> None:
        """One more searchable change; remembered so cached scans can catch up by record."""
        self._version += 1
        self._changed.append(record_id)
        if len(self._changed) > MAX_CHANGELOG:
            self._changed_base += len(self._changed) - MAX_CHANGELOG // 2
            del self._changed[: len(self._changed) - MAX_CHANGELOG // 2]

    # -- search ----------------------------------------------------------------------------
    def search(self, request: SearchRequest) -> tuple[int, list[str]]:
        """(total, ids of this page) for a validated search."""
        with self._lock:
            now = self._clock.monotonic()
            while self._pending and self._pending[0][0] <= now:
                _, record_id, snapshot = self._pending.popleft()
                self._search[record_id] = snapshot
                self._bump(record_id)
            ids = self._sorted_matches(request)
            if request.id_bound is not None:
                value, inclusive = request.id_bound
                cut = bisect_left if inclusive else bisect_right
                prop = request.sort_property
                start = cut(
                    ids, sort_key(value), key=lambda rid: sort_key(self._search[rid].get(prop))
                )
                ids = ids[start:]
            return len(ids), ids[request.after : request.after + request.limit]

    def _sorted_matches(self, request: SearchRequest) -> list[str]:
        """Matching ids in sort order, cached per query until the searchable data changes.

        A query paged by `hs_object_id GT n` is cached without its bound, so every page of a
        scan shares one evaluation and the bound is applied by bisection.
        """
        key = request.unbounded_key or request.cache_key
        predicate = request.unbounded or request.predicate
        cached = self._cache.get(key)
        if cached is not None and cached[0] != self._version and request.id_bound is not None:
            cached = self._catch_up(key, cached, predicate)
        if cached is None or cached[0] != self._version:
            ids = [rid for rid, props in self._search.items() if predicate(props)]
            prop = request.sort_property
            ids.sort(key=lambda rid: sort_key(self._search[rid].get(prop)))
            if request.descending:
                ids.reverse()
            if len(self._cache) > 16:
                self._cache.clear()
            cached = self._cache[key] = (self._version, ids)
        return cached[1]

    def _catch_up(
        self,
        key: str,
        cached: tuple[int, list[str]],
        predicate: Callable[[dict[str, str | None]], bool],
    ) -> tuple[int, list[str]] | None:
        """An id-sorted cached scan brought up to date by re-testing only the records changed
        since (records created or edited while a scan pages must not cost a full evaluation)."""
        version, ids = cached
        start = version - self._changed_base
        if start < 0:
            return None  # the changelog no longer reaches back that far
        members = list(ids)
        for record_id in dict.fromkeys(self._changed[start:]):
            position = bisect_left(members, sort_key(record_id), key=sort_key)
            present = position < len(members) and members[position] == record_id
            wanted = predicate(self._search[record_id])
            if wanted and not present:
                members.insert(position, record_id)
            elif present and not wanted:
                del members[position]
        updated = self._cache[key] = (self._version, members)
        return updated

    # -- wire shapes -----------------------------------------------------------------------
    def object_json(
        self, record_id: str, properties: Iterable[str] | None, *, as_searched: bool = False
    ) -> dict[str, Any]:
        """A SimplePublicObject: the requested properties, null when empty."""
        with self._lock:
            props = (self._search if as_searched else self._props)[record_id]
            names = list(properties) if properties else [*DEFAULT_PROPERTIES, "hs_object_id"]
            return {
                "id": record_id,
                "properties": {name: props.get(name) or None for name in names},
                "createdAt": iso(self._created[record_id]),
                "updatedAt": iso(self._updated[record_id]),
                "archived": False,
            }


def seed_created(index: int) -> datetime:
    """Deterministic creation times for seeded records, a minute apart."""
    return SEED_EPOCH + timedelta(minutes=index)
