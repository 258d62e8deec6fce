"""The run report counts every issue 9 outcome and the reasons for refusals, table and JSON."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from crm_sync.pipeline.report import (
    COUNT_NAMES,
    RunReport,
    SourceCounts,
    SourceReport,
    render_table,
)
from crm_sync.pipeline.writeback import reason_code

NEW_OUTCOMES = ("invalid_input", "invalid_value", "identity_mismatch", "malformed", "not_returned")


def _report() -> RunReport:
    counts = SourceCounts(invalid_value=2, identity_mismatch=1, rejected=3, not_returned=4)
    counts.rejected_reasons = Counter(
        {
            "crm:CONFLICT": 2,
            "crm:VALIDATION_ERROR/INVALID_EMAIL": 1,
            "invalid_value:email_syntax": 2,
        }
    )
    report = RunReport(run_id="r1", started_at=datetime(2026, 1, 1, tzinfo=UTC))
    report.sources.append(SourceReport("hs", "hubspot", counts))
    return report


def test_every_new_outcome_is_a_count_in_table_and_json() -> None:
    """invalid_input, invalid_value, identity_mismatch, malformed, not_returned: rows and keys."""
    report = _report()
    table = render_table(report)
    data = json.loads(report.to_json())["sources"][0]["counts"]
    for name in NEW_OUTCOMES:
        assert name in COUNT_NAMES
        assert name in data
        assert any(line.split("│")[1].strip() == name for line in table.splitlines() if "│" in line)
    assert data["not_returned"] == 4


def test_rejection_reasons_with_counts_in_table_and_json() -> None:
    """`counts.rejected_reasons` in --json; one `rejected: <reason>` row each in the table."""
    report = _report()
    data = json.loads(report.to_json())["sources"][0]["counts"]
    assert data["rejected_reasons"] == {
        "crm:CONFLICT": 2,
        "crm:VALIDATION_ERROR/INVALID_EMAIL": 1,
        "invalid_value:email_syntax": 2,
    }
    table = render_table(report)
    assert any(
        "rejected: crm:CONFLICT" in line and line.rstrip(" │").endswith("2")
        for line in table.splitlines()
    )


def test_reason_codes_drop_the_instance() -> None:
    """Reasons quoting ids or values count under one code."""
    assert reason_code("CONFLICT: Contact already exists. Existing ID: 123") == "CONFLICT"
    hubspot = (
        'VALIDATION_ERROR: Property values were not valid: [{"isValid": false, '
        '"message": "Email address x is invalid", "error": "INVALID_EMAIL", "name": "email"}]'
    )
    assert reason_code(hubspot) == "VALIDATION_ERROR/INVALID_EMAIL"
    assert reason_code("DUPLICATES_DETECTED: Use one of these records?") == "DUPLICATES_DETECTED"
    assert reason_code("not found in HubSpot") == "not_found_in_hubspot"
