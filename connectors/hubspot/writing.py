"""The HubSpot connector's writes: batch update, and what HubSpot's partial answers mean per record.

Writing: batch update (<= 100). 200: all written. 207: item errors are mapped to records by
their `context.ids`; an error that names no record (HubSpot's validation errors name the
property) is matched by the value it quotes, else the records left unconfirmed are re-read and
count as written only if they now hold what we sent. A whole-batch 409 (an email owned by
another contact) or 400 falls back to one PATCH per record, so only the bad record is rejected.
A 400 that refuses the property itself (PROPERTY_DOESNT_EXIST, READ_ONLY_VALUE) is no record's
fault: every record of the batch gets `FIELD_REFUSED`, with no per-record retries.

A mixin of `HubSpotConnector`, using its `_call` (throttle, retries, error translation) and `read`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInput,
)

from connectors.base import ConnectorLimits, Contact, FieldUpdate, WriteOutcome, WriteStatus
from connectors.hubspot.fields import API_ERRORS
from connectors.hubspot.policy import error_fields, field_refusal
from crm_sync.logs import scrub

if TYPE_CHECKING:
    from connectors.hubspot.settings import HubSpotSettings

T = TypeVar("T")


class HubSpotWrites:
    """`write`: batches of at most `limits.write_batch_size`, one outcome per update."""

    if TYPE_CHECKING:
        field_map: Mapping[str, str]
        hs_settings: HubSpotSettings
        limits: ClassVar[ConnectorLimits]
        log: Any
        _batch_api: Any
        _basic_api: Any

        def _call(
            self, kind: str, fn: Callable[[], T], passthrough: frozenset[int] = frozenset()
        ) -> T: ...

        def read(self, ids: Sequence[str]) -> dict[str, Contact]: ...

    def _crm_properties(self, update: FieldUpdate) -> dict[str, str]:
        return {self.field_map[name]: value for name, value in update.values.items()}

    def _chunks(self, updates: Sequence[FieldUpdate]) -> list[list[int]]:
        """Indexes in batches of <= 100 with no record twice (HubSpot refuses duplicate ids)."""
        chunks: list[list[int]] = []
        pending = list(range(len(updates)))
        while pending:
            chunk: list[int] = []
            seen: set[str] = set()
            rest: list[int] = []
            for i in pending:
                rid = updates[i].record_id
                if len(chunk) < self.limits.write_batch_size and rid not in seen:
                    chunk.append(i)
                    seen.add(rid)
                else:
                    rest.append(i)
            chunks.append(chunk)
            pending = rest
        return chunks

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Write in batches; one outcome per update, in order; a bad record never raises."""
        outcomes: dict[int, WriteOutcome] = {}
        for chunk in self._chunks(updates):
            outcomes.update(self._write_batch([updates[i] for i in chunk], chunk))
        return [outcomes[i] for i in range(len(updates))]

    def _write_batch(self, batch: list[FieldUpdate], indexes: list[int]) -> dict[int, WriteOutcome]:
        inputs = [
            SimplePublicObjectBatchInput(id=u.record_id, properties=self._crm_properties(u))
            for u in batch
        ]
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        try:
            answer = self._call(
                "write",
                lambda: self._batch_api.update(
                    batch_input_simple_public_object_batch_input=body,
                    _request_timeout=self.hs_settings.timeout_seconds,
                ),
                passthrough=frozenset({400, 409}),
            )
        except API_ERRORS as exc:
            category = error_fields(exc)[0]
            self.log.info("hubspot_batch_refused", status=exc.status, category=category)
            refusal = field_refusal(exc)
            if refusal:
                return {
                    i: WriteOutcome(u.record_id, WriteStatus.FIELD_REFUSED, refusal)
                    for i, u in zip(indexes, batch, strict=True)
                }
            return {i: self._write_one(u) for i, u in zip(indexes, batch, strict=True)}
        errors = getattr(answer, "errors", None) or []
        if not errors:
            return {
                i: WriteOutcome(u.record_id, WriteStatus.WRITTEN)
                for i, u in zip(indexes, batch, strict=True)
            }
        written = {str(r.id) for r in answer.results or []}
        return self._attribute(batch, indexes, written, errors)

    def _write_one(self, update: FieldUpdate) -> WriteOutcome:
        """PATCH one record; 400/404/409 reject it with HubSpot's message."""
        try:
            self._call(
                "write",
                lambda: self._basic_api.update(
                    contact_id=update.record_id,
                    simple_public_object_input=SimplePublicObjectInput(
                        properties=self._crm_properties(update)
                    ),
                    _request_timeout=self.hs_settings.timeout_seconds,
                ),
                passthrough=frozenset({400, 404, 409}),
            )
        except API_ERRORS as exc:
            refusal = field_refusal(exc)
            if refusal:
                return WriteOutcome(update.record_id, WriteStatus.FIELD_REFUSED, refusal)
            category, message, _ = error_fields(exc)
            reason = f"{category}: {message}" if category else message or f"HTTP {exc.status}"
            return WriteOutcome(update.record_id, WriteStatus.REJECTED, reason)
        return WriteOutcome(update.record_id, WriteStatus.WRITTEN)

    def _attribute(
        self, batch: list[FieldUpdate], indexes: list[int], written: set[str], errors: list[Any]
    ) -> dict[int, WriteOutcome]:
        """Map 207 item errors to records: by context ids, by quoted value, else by re-reading."""
        rejected: dict[str, str] = {}
        unattributed: list[str] = []
        for error in errors:
            reason = f"{error.category}: {scrub(str(error.message))}"
            context = error.context or {}
            ids = [str(i) for i in context.get("ids") or context.get("id") or []]
            if not ids:
                ids = [
                    u.record_id
                    for u in batch
                    if u.record_id not in written
                    and any(v in str(error.message) for v in u.values.values())
                ]
            if len(ids) == 1 or context.get("ids"):
                rejected.update(dict.fromkeys(ids, reason))
            else:
                unattributed.append(reason)
        unsure = [u for u in batch if u.record_id not in written and u.record_id not in rejected]
        if unsure:
            current = self.read([u.record_id for u in unsure])
            fallback = "; ".join(unattributed) or "not confirmed by HubSpot"
            for u in unsure:
                contact = current.get(u.record_id)
                if contact is None:
                    rejected[u.record_id] = "not found in HubSpot"
                elif all(contact.value(k) == v for k, v in u.values.items()):
                    written.add(u.record_id)
                else:
                    rejected[u.record_id] = fallback
        return {
            i: WriteOutcome(u.record_id, WriteStatus.REJECTED, rejected[u.record_id])
            if u.record_id in rejected
            else WriteOutcome(u.record_id, WriteStatus.WRITTEN)
            for i, u in zip(indexes, batch, strict=True)
        }
