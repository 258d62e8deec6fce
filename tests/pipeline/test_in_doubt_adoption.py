"""A webhook for a batch we lost track of (in_doubt) is recognised by its contacts and written."""

from __future__ import annotations

import json
from pathlib import Path

from crm_sync.daemon.webapp import check_body
from crm_sync.enrichment.wire import dialect_for
from crm_sync.pipeline.collect import accept_result
from crm_sync.pipeline.cycle import collect_and_write
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.records import PlannedContact
from tests.pipeline.conftest import context, make_config
from tests.support.dialects import both_api_versions, wire_item, wire_result  # noqa: F401


def _body(
    api_version: str,
    enrichment_id: str,
    source: str,
    record_ids: list[str],
    names: dict[str, tuple[str | None, str | None]],
) -> str:
    """The webhook body in the dialect's shape, read as the receiver reads it."""
    items = [
        wire_item(
            api_version,
            {"crm_id": rid, "source": source},
            f"found.{rid}@example.com",
            names[rid],
        )
        for rid in record_ids
    ]
    wire = json.dumps(wire_result(api_version, enrichment_id, items)).encode()
    return check_body(wire, dialect_for(api_version))


def test_in_doubt_batch_is_adopted_and_written(
    world: SandboxWorld, tmp_path: Path, api_version: str
) -> None:
    """The matching in_doubt batch takes the enrichment id; its found emails reach the CRM."""
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    without_email = [rid for rid, p in world.hubspot.records.items() if not p.get("email")]
    ids, stranger = without_email[:3], without_email[3]
    names = {r: (p.get("firstname"), p.get("lastname")) for r, p in world.hubspot.records.items()}
    with context(config) as ctx:
        store = ctx.store
        planned = [PlannedContact(rid, ("contact.emails",), {"firstname": "x"}) for rid in ids]
        batch = store.plan_batch(
            source="hubspot",
            run_id="r",
            owner=ctx.owner,
            name="n",
            contacts=planned,
            reserved_credits_for=len,
        )
        assert batch is not None
        assert store.mark_sending(batch.id, ctx.owner)
        assert store.mark_in_doubt(batch.id, "crashed")
        foreign = _body(api_version, "other-job", "hubspot", [*ids[:2], stranger], names)
        assert accept_result(ctx, foreign, source_kind="webhook") == "kept"
        assert (
            accept_result(
                ctx, _body(api_version, "lost-job", "hubspot", ids, names), source_kind="webhook"
            )
            == "stored"
        )
        collect_and_write(ctx, {"hubspot": SourceCounts()})
        assert store.get_batch(batch.id).state == "written"  # type: ignore[union-attr]
    for rid in ids:
        assert world.hubspot.records[rid]["email"] == f"found.{rid}@example.com"
