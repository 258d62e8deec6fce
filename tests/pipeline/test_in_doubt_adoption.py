"""A webhook for a batch we lost track of (in_doubt) is recognised by its contacts and written."""

from __future__ import annotations

import json
from pathlib import Path

from crm_sync.pipeline.collect import accept_result
from crm_sync.pipeline.cycle import collect_and_write
from crm_sync.pipeline.report import SourceCounts
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.records import PlannedContact
from tests.pipeline.conftest import context, make_config


def _body(world: SandboxWorld, enrichment_id: str, source: str, record_ids: list[str]) -> str:
    """A result as the API sends it: the person's names echoed, an email found."""
    records = world.hubspot.records
    return json.dumps(
        {
            "id": enrichment_id,
            "name": "crm-sync test",
            "status": "FINISHED",
            "datas": [
                {
                    "custom": {"crm_id": rid, "source": source},
                    "contact": {
                        "firstname": records[rid].get("firstname") or "",
                        "lastname": records[rid].get("lastname") or "",
                        "most_probable_email": f"found.{rid}@example.com",
                        "most_probable_email_status": "DELIVERABLE",
                    },
                }
                for rid in record_ids
            ],
        }
    )


def test_in_doubt_batch_is_adopted_and_written(world: SandboxWorld, tmp_path: Path) -> None:
    """The matching in_doubt batch takes the enrichment id; its found emails reach the CRM."""
    config = make_config(world, tmp_path, sources=[world.hubspot_source()])
    ids = [rid for rid, p in world.hubspot.records.items() if not p.get("email")][:3]
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
        assert (
            accept_result(ctx, _body(world, "other-job", "hubspot", ids[:2]), source_kind="webhook")
            == "unknown"
        )
        assert (
            accept_result(ctx, _body(world, "lost-job", "hubspot", ids), source_kind="webhook")
            == "stored"
        )
        collect_and_write(ctx, {"hubspot": SourceCounts()})
        assert store.get_batch(batch.id).state == "written"  # type: ignore[union-attr]
    for rid in ids:
        assert world.hubspot.records[rid]["email"] == f"found.{rid}@example.com"
