"""The API's vocabulary (enrich fields, email statuses, prices) is written in one module each."""

from __future__ import annotations

import ast
from pathlib import Path

from crm_sync.config import SourceConfig
from crm_sync.enrichment.email_statuses import EMAIL_STATUSES, WRITABLE_BY_DEFAULT
from crm_sync.enrichment.prices import CREDITS_PER_FIELD, worst_case_cost
from crm_sync.fields import ENRICH_FIELD_FOR, ENRICH_FIELDS, LOGICAL_FIELDS, LOGICAL_FOR

ROOT = Path(__file__).parents[3]
#: Where each word may be written; the sandbox states the API's facts itself, on purpose.
HOMES = {
    **dict.fromkeys(ENRICH_FIELDS, "crm_sync/fields.py"),
    **dict.fromkeys(EMAIL_STATUSES, "crm_sync/enrichment/email_statuses.py"),
}


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_enrich_fields_and_email_statuses_are_written_once() -> None:
    """No engine or connector module restates an enrich field name or an email status."""
    offenders = []
    for folder in ("crm_sync", "connectors"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("crm_sync/sandbox/"):
                continue
            offenders += [
                f"{relative}: {word!r}"
                for word in _literals(path) & HOMES.keys()
                if HOMES[word] != relative
            ]
    assert offenders == []


def test_prices_follow_the_price_list() -> None:
    """1 credit per work email, 3 per personal email, 10 per phone (the API's reference)."""
    assert set(CREDITS_PER_FIELD) == set(ENRICH_FIELDS)
    assert worst_case_cost(ENRICH_FIELDS) == 14
    assert worst_case_cost([ENRICH_FIELD_FOR["phone"]]) == 10


def test_logical_fields_map_both_ways() -> None:
    """Each logical field has one enrich field that finds it, and back."""
    assert set(ENRICH_FIELD_FOR) == set(LOGICAL_FIELDS)
    assert {LOGICAL_FOR[ENRICH_FIELD_FOR[f]] for f in LOGICAL_FIELDS} == set(LOGICAL_FIELDS)


def test_sources_write_the_default_statuses() -> None:
    """A source that says nothing writes the default statuses, all of them known ones."""
    source = SourceConfig(name="s", connector="hubspot", fields={"email": "email"})
    assert source.accepted_email_statuses == WRITABLE_BY_DEFAULT
    assert set(WRITABLE_BY_DEFAULT) <= set(EMAIL_STATUSES)
