"""The README's exit code table is the one in crm_sync/exit_codes.py, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from crm_sync import exit_codes
from crm_sync.exit_codes import MEANINGS, RETRYABLE_EXIT_CODES, most_severe

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_rows() -> dict[int, tuple[str, str]]:
    text = README.read_text()
    block = re.search(r"<!-- exit-codes -->\n(.*?)<!-- /exit-codes -->", text, re.S)
    assert block, "README.md has no exit-codes table"
    rows: dict[int, tuple[str, str]] = {}
    for line in block.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1], cells[2])
    return rows


def test_readme_table_matches_exit_codes() -> None:
    """Same codes, same meanings, and `retry?` says yes exactly for RETRYABLE_EXIT_CODES."""
    rows = _readme_rows()
    assert set(rows) == set(MEANINGS)
    for code, (meaning, retry) in rows.items():
        assert meaning == MEANINGS[code], code
        expected = (
            "-" if code == exit_codes.EXIT_OK else "yes" if code in RETRYABLE_EXIT_CODES else "no"
        )
        assert retry == expected, code


def test_every_exit_constant_has_a_meaning() -> None:
    """No EXIT_* constant is left out of the table."""
    codes = {v for k, v in vars(exit_codes).items() if k.startswith("EXIT_")}
    assert codes == set(MEANINGS) == set(exit_codes.RUN_STATUS)


def test_a_person_must_act_outranks_a_retry() -> None:
    """in_doubt wins over everything; a config error wins over a transient one."""
    assert most_severe([0, 5, 7, 6]) == exit_codes.EXIT_IN_DOUBT
    assert most_severe([5, 2]) == exit_codes.EXIT_CONFIG
    assert most_severe([5, 7]) == exit_codes.EXIT_INTERRUPTED
    assert most_severe([]) == exit_codes.EXIT_OK
