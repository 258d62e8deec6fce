"""A small sandbox world whose results come in the answer styles of the edges (issue 9).

Every test here that uses the world runs in both wire dialects (v1 and v2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.config import Config, parse_config
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.support.dialects import both_api_versions  # noqa: F401 - the `api_version` fixture: v1, v2

RUN = {"poll_initial_seconds": 0.05, "poll_max_seconds": 0.2, "batch_size": 20}


@pytest.fixture
def world(api_version: str) -> Iterator[SandboxWorld]:
    """60 HubSpot contacts (about three batches of 20), jobs done in 0.05 s, fast retries."""
    options = WorldOptions(
        hubspot_contacts=60,
        salesforce_contacts=0,
        completion_delay=0.05,
        rate_limit_calls=1000,
        webhook_retry_interval=0.1,
        api_version=api_version,
    )
    with SandboxWorld(options) as started:
        yield started


def hubspot_config(world: SandboxWorld, tmp_path: Path, **run: Any) -> Config:
    """The world's HubSpot source alone, polling fast, batches of 20, a SQLite store."""
    raw = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        sources=[world.hubspot_source()],
        run={**RUN, **run},
    )
    return parse_config(raw, env={})


#: Besides the API's jobs, a run may leave `failed` batches: refused whole by the emulator's
#: strict input rules and split before any work (their contacts went out in the parts).
REFUSED = "failed"


def only(states: dict[str, int], state: str, count: int) -> bool:
    """`count` batches in `state`, and no other batch but refused ones."""
    return states.get(state) == count and set(states) <= {state, REFUSED}


def result_items(world: SandboxWorld) -> dict[str, list[dict[str, Any]]]:
    """Each job's items as the emulator answers them (styles applied), in the internal shape."""
    bodies = {job: world.enrichment.internal_result(job) for job in world.enrichment.job_ids()}
    return {job: body.get("datas", []) for job, body in bodies.items()}


def sent_ids(world: SandboxWorld) -> dict[str, list[str]]:
    """Each job's CRM record ids, in the order they were sent."""
    sent: dict[str, list[str]] = {}
    for contact in world.enrichment.submitted:
        sent.setdefault(contact.enrichment_id, []).append(contact.custom["crm_id"])
    return sent
