"""An emulator job, its serialised bodies, and the record of each contact it was asked about."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from crm_sync.sandbox.enrichment.facts import JobStatus
from crm_sync.sandbox.enrichment.records import SubmittedContact, identity_key
from crm_sync.sandbox.enrichment.validation import ValidBulk, ValidContact


def json_bytes(body: dict[str, Any]) -> bytes:
    """Serialised as Starlette's JSONResponse does, so GET and webhook bodies are identical."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Job:
    """One bulk enrichment: its request, where it stands, and its terminal body once settled."""

    id: str
    request: ValidBulk
    status: JobStatus = JobStatus.CREATED
    body: bytes | None = None  # the terminal result object, serialised once
    v1_body: bytes | None = None  # the same in v1's shape (a GET through /api/v1)
    gets: int = 0  # non-terminal GETs, for the "alternate" in-progress style
    expired: bool = False
    dialect: str = "v1"  # the API version it was created through; its bodies speak it
    contact_url: str | None = None  # v2 `webhook_events.contact_finished`
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def pending_body(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.request.name, "status": self.status.value}


def submission(enrichment_id: str, contact: ValidContact, at: float) -> SubmittedContact:
    """What the emulator records for one submitted contact (counted by tests)."""
    identity = identity_key(
        contact.firstname,
        contact.lastname,
        contact.domain,
        contact.company_name,
        contact.linkedin_url,
    )
    return SubmittedContact(
        enrichment_id, dict(contact.custom), contact.enrich_fields, identity, at
    )
