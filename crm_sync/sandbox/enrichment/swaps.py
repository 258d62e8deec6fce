"""The "swapped custom" answer style: a result item carries another contact's `custom`.

An independent fake of the API showed a result whose `custom` named another contact of the
same batch: written as is, two people swap emails. With the `swapped_custom` answer style
(`AnswerStyles(swapped_custom=True)`, `crm-sync sandbox --answer-style swapped_custom`) each
finished job's first two items trade their `custom`, while their contact data (and the names
it echoes) stays with the person it was found for.
"""

from __future__ import annotations

from typing import Any


def swap_customs(datas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`datas` with the first two items' `custom` exchanged (unchanged with fewer than two)."""
    if len(datas) < 2:
        return datas
    swapped = [dict(item) for item in datas]
    swapped[0]["custom"], swapped[1]["custom"] = datas[1]["custom"], datas[0]["custom"]
    return swapped
