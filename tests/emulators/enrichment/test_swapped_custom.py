"""The `swapped_custom` answer style: two items trade `custom`, each keeping its person's data."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from crm_sync.sandbox.enrichment import EnrichmentEmulator
from crm_sync.sandbox.enrichment.styles import AnswerStyles
from tests.emulators.enrichment.conftest import bulk, contact, wait_until


def test_a_finished_result_names_the_other_contact(
    make_api: Callable[..., tuple[EnrichmentEmulator, httpx.Client]],
) -> None:
    """Over HTTP: the first two items carry each other's `custom`; names stay with the data."""
    emulator, client = make_api(
        completion_delay=0.05, styles=AnswerStyles.named(["swapped_custom"])
    )
    people = [("Ada", "a"), ("Grace", "g"), ("Linus", "l")]
    body = bulk(*[contact(first, custom={"crm_id": cid}) for first, cid in people])
    enrichment_id = client.post("/contact/enrich/bulk", json=body).json()["enrichment_id"]

    def finished() -> bool:
        answer = client.get(f"/contact/enrich/bulk/{enrichment_id}").json()
        return bool(answer.get("status") == "FINISHED")

    wait_until(finished)
    datas = client.get(f"/contact/enrich/bulk/{enrichment_id}").json()["datas"]
    assert [(d["contact"]["firstname"], d["custom"]["crm_id"]) for d in datas] == [
        ("Ada", "g"),
        ("Grace", "a"),
        ("Linus", "l"),
    ]
    assert emulator.styles.swapped_custom
