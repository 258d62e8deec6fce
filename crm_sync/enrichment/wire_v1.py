"""The v1 dialect: the internal model is v1's shape, so every mapping is the identity."""

from __future__ import annotations

from typing import Any

from crm_sync.enrichment.models import BulkRequest


class _V1:
    """FullEnrich / DeepEnrich v1: `datas`, `firstname`, `contact.emails`, flat contacts."""

    version = "v1"

    def request_body(
        self, request: BulkRequest, *, contact_events: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if contact_events:
            raise ValueError("v1 has no per-contact webhook events")
        return request.wire()

    def to_internal(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def contact_event_items(self, body: Any) -> tuple[str | None, list[dict[str, Any]]]:
        raise ValueError("v1 sends no per-contact webhook events")

    def looks_like_result(self, body: Any) -> bool:
        return isinstance(body, dict) and ("status" in body or "datas" in body)

    def error_code(self, code: str) -> str:
        return code


V1 = _V1()

__all__ = ["V1"]
