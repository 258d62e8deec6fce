"""Answer styles of the enrichment emulator: edges of the real API a test can switch on.

Each switch reproduces something a real deployment meets and the default answers never show.
They are plain fields of one mutable dataclass so a test may flip them while the emulator
runs (`emulator.styles.missing_item = True`) and `crm-sync sandbox enrichment --answer-style`
can name them. A new style is one more field here and one more step in `shape_datas` (or a
check in the emulator where the style is about timing, like `slow_post_answer`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from crm_sync.sandbox.enrichment.swaps import swap_customs

#: The numeric phone a `malformed_item` carries: a JSON number where the API sends a string.
MALFORMED_PHONE = 14155550100
#: Where the emulator waits at most for the first webhook attempt of a `slow_post_answer` job.
SLOW_POST_WAIT_SECONDS = 10.0


@dataclass
class AnswerStyles:
    """Which unusual answers the emulator gives; all off by default."""

    # The job finishes and its webhook is delivered (first attempt) before the POST is answered.
    slow_post_answer: bool = False
    # The first result item's `most_probable_phone` is a JSON number: that item is unreadable.
    malformed_item: bool = False
    # The last item is left out of the result (the API "forgot" a contact).
    missing_item: bool = False
    # The last item's `custom.crm_id` names no contact that was sent.
    unknown_custom: bool = False
    # `datas` is not a list: the whole result (GET and webhook) cannot be read.
    unreadable_result: bool = False
    # The first two items trade their `custom`: each names the other contact (swaps.py).
    swapped_custom: bool = False
    # Seconds the POST's answer is held after the job was created (it runs meanwhile, so its
    # webhook may come first, and a client that times out cannot know it was created).
    slow_post_seconds: float = 0.0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The on/off styles' names, as the CLI offers them (`slow_post_seconds` is Python's)."""
        return tuple(f.name for f in fields(cls) if f.type in (bool, "bool"))

    @classmethod
    def named(cls, names: list[str] | tuple[str, ...]) -> AnswerStyles:
        """The styles with `names` switched on; ValueError for an unknown name."""
        unknown = sorted(set(names) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown answer style(s) {unknown}; known: {list(cls.names())}")
        return cls(**dict.fromkeys(names, True))

    def shape_datas(self, datas: list[dict[str, Any]], dialect: str = "v1") -> Any:
        """The items of a terminal result as these styles answer them (a new list; input kept).

        `dialect` names the items' shape: v1 `datas` items, or v2 `data` items (where the
        phone lives in `contact_info.phones[].number`).
        """
        if self.unreadable_result:
            return "datas unavailable"
        shaped = [dict(item) for item in datas]
        if self.swapped_custom:
            shaped = swap_customs(shaped)
        if self.missing_item and shaped:
            shaped.pop()
        if self.unknown_custom and shaped:
            last = shaped[-1]
            custom = dict(last.get("custom") or {})
            custom["crm_id"] = f"unknown-{custom.get('crm_id', 'x')}"
            last["custom"] = custom
        if self.malformed_item and shaped:
            first = shaped[0]
            if dialect == "v2":
                info = dict(first.get("contact_info") or {})
                info["phones"] = [{"number": MALFORMED_PHONE, "region": "US"}]
                first["contact_info"] = info
            else:
                contact = {**first.get("contact", {}), "most_probable_phone": MALFORMED_PHONE}
                first["contact"] = contact
        return shaped
