"""Wire dialects: how one internal model (`models.py`) is spoken to FullEnrich v1 or v2.

The pipeline, the store and the connectors only see the internal model (whose names follow
v1, the first dialect). A dialect maps, in its own module, each direction of the wire:

    internal BulkRequest            -> request_body()  -> the JSON the API's POST takes
    the API's result JSON (GET or   -> to_internal()   -> the internal result dict, stored as
    webhook, batch or per contact)                        is and read by EnrichmentResult
    the API's error code            -> error_code()    -> the internal (v1) error code

Costs and statuses have the same shape in both versions (`cost.credits`, the same status
names), so they pass through `to_internal` unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol

from crm_sync.enrichment.models import BulkRequest


class WireDialect(Protocol):
    """One version of the API's wire format."""

    version: str

    def request_body(
        self, request: BulkRequest, *, contact_events: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The POST body for `request`, with per-contact webhook events when asked."""
        ...

    def to_internal(self, body: dict[str, Any]) -> dict[str, Any]:
        """A result object (GET answer or batch webhook) in the internal shape.

        Raises ValueError when the body is plainly of another dialect."""
        ...

    def contact_event_items(self, body: Any) -> tuple[str | None, list[dict[str, Any]]]:
        """A per-contact webhook: (enrichment id if it says, internal result items)."""
        ...

    def looks_like_result(self, body: Any) -> bool:
        """True when an error answer (402) carries a result object."""
        ...

    def error_code(self, code: str) -> str:
        """The internal name of an API error code."""
        ...


def dialect_for(version: str) -> WireDialect:
    """The dialect of `api_version` (`v1` or `v2`)."""
    from crm_sync.enrichment import wire_v1, wire_v2

    dialects: dict[str, WireDialect] = {"v1": wire_v1.V1, "v2": wire_v2.V2}
    try:
        return dialects[version]
    except KeyError:
        raise ValueError(f"unknown api_version {version!r}; known: v1, v2") from None


__all__ = ["WireDialect", "dialect_for"]
