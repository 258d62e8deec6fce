"""The emulator's answer styles: switchable per test, and from `crm-sync sandbox enrichment`."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from crm_sync.sandbox.enrichment.styles import MALFORMED_PHONE, AnswerStyles

KEY = "sandbox-enrichment-key"


def _items() -> list[dict[str, object]]:
    return [
        {"custom": {"crm_id": str(i)}, "contact": {"most_probable_phone": ""}} for i in range(3)
    ]


def test_styles_shape_the_result_items() -> None:
    """Each style changes `datas` as documented, and leaves the input list alone."""
    items = _items()
    assert [i["custom"] for i in AnswerStyles(missing_item=True).shape_datas(items)] == [
        {"crm_id": "0"},
        {"crm_id": "1"},
    ]
    assert AnswerStyles(unknown_custom=True).shape_datas(items)[-1]["custom"] == {
        "crm_id": "unknown-2"
    }
    shaped = AnswerStyles(malformed_item=True).shape_datas(items)
    assert shaped[0]["contact"]["most_probable_phone"] == MALFORMED_PHONE
    assert not isinstance(AnswerStyles(unreadable_result=True).shape_datas(items), list)
    assert items == _items()


def test_unknown_style_names_are_refused() -> None:
    """A typo in a style name fails loudly instead of testing nothing."""
    with pytest.raises(ValueError, match="unknown answer style"):
        AnswerStyles.named(["missing_items"])


def test_the_sandbox_command_serves_an_answer_style() -> None:
    """`--answer-style missing_item`: a finished result over HTTP lacks its last item."""
    command = [sys.executable, "-m", "crm_sync.cli", "sandbox", "enrichment"]
    command += ["--completion-delay", "0.05", "--answer-style", "missing_item"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(4)]
            url = lines[1].split(": ", 1)[1].strip()
            body = {
                "name": "styles",
                "datas": [
                    {"firstname": f, "lastname": "Lovelace", "domain": "acme.com"}
                    for f in ("Ada", "Bob")
                ],
            }
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
                job = http.post("/contact/enrich/bulk", json=body).json()["enrichment_id"]
                result: dict[str, object] = {}
                for _ in range(100):
                    answer = http.get(f"/contact/enrich/bulk/{job}")
                    result = answer.json()
                    if answer.status_code == 200 and result.get("status") == "FINISHED":
                        break
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "answer styles: missing_item" in lines[3]
    assert result["status"] == "FINISHED"
    assert isinstance(result["datas"], list)
    assert len(result["datas"]) == 1
