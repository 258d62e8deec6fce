"""HubSpot's search language, emulated: request limits, filter operators, sorting.

Semantics chosen where HubSpot's documentation is silent (the connector is written so that the
answer does not change which records it finds, but tests rely on these):

* A missing property and an empty string are the same thing: "no value".
* `NEQ` and `NOT_IN` match a record that has no value (it is not equal to anything); `EQ`, `IN`,
  `LT`/`LTE`/`GT`/`GTE`, `BETWEEN` and `CONTAINS_TOKEN` never match it.
* `EQ`/`NEQ`/`IN`/`NOT_IN` compare strings case-insensitively; comparisons are numeric when both
  sides are numbers (`hs_object_id GT 9999`), else by string.
* Date-time properties (`createdate`, `lastmodifieddate`) compare as instants: a filter value
  may be epoch milliseconds (what HubSpot documents) or an ISO 8601 string; anything else is
  refused with 400.
* Sorts in the documented object form (`{"propertyName", "direction"}`) are honoured; the string
  form of the published spec is ignored, as the live API is reported to do
  (HubSpot/hubspot-api-ruby#257), leaving the default order (by id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS_TOTAL = 25
MAX_LIMIT = 200
MAX_BODY_CHARS = 3000
RESULT_CAP = 10_000
DEFAULT_LIMIT = 10

VALUE_OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)
LIST_OPERATORS = frozenset({"IN", "NOT_IN"})
PRESENCE_OPERATORS = frozenset({"HAS_PROPERTY", "NOT_HAS_PROPERTY"})
OPERATORS = VALUE_OPERATORS | LIST_OPERATORS | PRESENCE_OPERATORS | {"BETWEEN"}
DATE_PROPERTIES = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate"})

Props = Mapping[str, str | None]
Predicate = Callable[[Props], bool]


class SearchError(Exception):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated search body."""

    predicate: Predicate
    sort_property: str
    descending: bool
    properties: tuple[str, ...] | None
    limit: int
    after: int
    cache_key: str
    # `hs_object_id GT|GTE n` present in every group: applied by bisection on the cached,
    # id-sorted result of the rest of the query, so paging by id costs O(log n) per page.
    id_bound: tuple[str, bool] | None = None  # (value, inclusive)
    unbounded: Predicate | None = None  # the predicate without that bound
    unbounded_key: str = ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(left: str, right: str) -> int:
    """-1, 0 or 1; numeric when both sides are numbers."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    la, lb = left.casefold(), right.casefold()
    return (la > lb) - (la < lb)


def epoch_ms(text: str) -> float | None:
    """A date-time value as epoch milliseconds: digits as they are, or an ISO 8601 instant."""
    if text.strip().lstrip("-").isdigit():
        return float(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp() * 1000


def _date_predicate(name: str, op: str, value: str) -> Predicate:
    """`createdate GTE 1735689600000`: both sides as instants; no value never matches."""
    wanted_ms = epoch_ms(value)
    if wanted_ms is None:
        raise SearchError(f"{value!r} is not a valid date-time for {name}: use epoch milliseconds")
    wanted = {"EQ": (0,), "LT": (-1,), "LTE": (-1, 0), "GT": (1,), "GTE": (1, 0)}[op]

    def test(p: Props) -> bool:
        found = epoch_ms(p.get(name) or "")
        if found is None:
            return False
        return ((found > wanted_ms) - (found < wanted_ms)) in wanted

    return test


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^0-9a-z]+", text.casefold()) if t}


def _token_match(value: str, token: str) -> bool:
    pattern = re.escape(token.casefold().strip()).replace(r"\*", ".*")
    return any(re.fullmatch(pattern, t) for t in _tokens(value)) or bool(
        re.fullmatch(pattern, value.casefold())
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compile_filter(raw: Any) -> Predicate:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise SearchError("each filter needs a propertyName")
    name, op = raw["propertyName"], raw.get("operator")
    if op not in OPERATORS:
        raise SearchError(f"Unknown operator {op!r} for property {name}")
    if op in PRESENCE_OPERATORS:
        want = op == "HAS_PROPERTY"
        return lambda p: bool(p.get(name)) is want
    if op in LIST_OPERATORS:
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"{op} on {name} needs a non-empty `values` list")
        folded = {_as_text(v).casefold() for v in values}
        if op == "IN":
            return lambda p: bool(p.get(name)) and str(p[name]).casefold() in folded
        return lambda p: not p.get(name) or str(p[name]).casefold() not in folded
    if "value" not in raw or raw["value"] is None:
        raise SearchError(f"{op} on {name} needs a `value`")
    value = _as_text(raw["value"])
    if op == "BETWEEN":
        if raw.get("highValue") is None:
            raise SearchError(f"BETWEEN on {name} needs a `highValue`")
        high = _as_text(raw["highValue"])
        return lambda p: (
            bool(p.get(name))
            and _compare(value, p[name] or "") <= 0 <= _compare(high, p[name] or "")
        )
    return _value_predicate(name, op, value)


def _value_predicate(name: str, op: str, value: str) -> Predicate:
    if name in DATE_PROPERTIES and op in {"EQ", "LT", "LTE", "GT", "GTE"}:
        return _date_predicate(name, op, value)
    if op == "NEQ":
        return lambda p: not p.get(name) or _compare(p[name] or "", value) != 0
    if op == "CONTAINS_TOKEN":
        return lambda p: bool(p.get(name)) and _token_match(p[name] or "", value)
    if op == "NOT_CONTAINS_TOKEN":
        return lambda p: not p.get(name) or not _token_match(p[name] or "", value)
    wanted = {"EQ": (0,), "LT": (-1,), "LTE": (-1, 0), "GT": (1,), "GTE": (1, 0)}[op]
    return lambda p: bool(p.get(name)) and _compare(p[name] or "", value) in wanted


def _compile_groups(groups: Any) -> Predicate:
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: {len(groups)} (the maximum is {MAX_GROUPS})")
    compiled: list[list[Predicate]] = []
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError("each filter group needs a `filters` list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a group: {len(filters)} (the maximum is "
                f"{MAX_FILTERS_PER_GROUP})"
            )
        total += len(filters)
        compiled.append([_compile_filter(f) for f in filters])
    if total > MAX_FILTERS_TOTAL:
        raise SearchError(f"Too many filters: {total} (the maximum is {MAX_FILTERS_TOTAL})")
    if not compiled:
        return lambda p: True
    return lambda p: any(all(f(p) for f in group) for group in compiled)


def _sort(sorts: Any) -> tuple[str, bool]:
    if sorts is None or sorts == []:
        return "hs_object_id", False
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise SearchError("Only one sort is allowed")
    sort = sorts[0]
    if isinstance(sort, dict) and isinstance(sort.get("propertyName"), str):
        direction = sort.get("direction", "ASCENDING")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise SearchError(f"Unknown sort direction {direction!r}")
        return sort["propertyName"], direction == "DESCENDING"
    return "hs_object_id", False  # the string form: ignored, like the live API


def parse_search(raw_body: bytes) -> SearchRequest:
    """Validate a search body the way HubSpot does; SearchError says what is wrong."""
    text = raw_body.decode("utf-8", errors="replace")
    if len(text) > MAX_BODY_CHARS:
        raise SearchError(
            f"The request body is {len(text)} characters; the maximum is {MAX_BODY_CHARS}"
        )
    try:
        body = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise SearchError("Invalid input JSON") from None
    if not isinstance(body, dict):
        raise SearchError("Invalid input JSON: expected an object")
    limit = body.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}")
    after_raw = body.get("after") or "0"
    if not str(after_raw).isdigit():
        raise SearchError(f"Invalid after: {after_raw!r}")
    after = int(after_raw)
    if after + limit > RESULT_CAP:
        raise SearchError(
            f"Paging past {RESULT_CAP} results is not supported: after={after} limit={limit}"
        )
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, list):
        raise SearchError("properties must be a list")
    groups = body.get("filterGroups")
    sort_property, descending = _sort(body.get("sorts"))
    predicate = _compile_groups(groups)  # validates every group as sent, bound included
    id_bound, rest = (
        _split_id_bound(groups)
        if sort_property == "hs_object_id" and not descending
        else (None, groups)
    )
    return SearchRequest(
        predicate=predicate,
        sort_property=sort_property,
        descending=descending,
        properties=tuple(properties) if properties else None,
        limit=limit,
        after=after,
        cache_key=json.dumps([groups, sort_property, descending], sort_keys=True),
        id_bound=id_bound,
        unbounded=_compile_groups(rest) if id_bound is not None else None,
        unbounded_key=json.dumps([rest, sort_property], sort_keys=True) if id_bound else "",
    )


def _split_id_bound(groups: Any) -> tuple[tuple[str, bool] | None, Any]:
    """Take out an `hs_object_id GT/GTE` filter that every group carries with the same value."""
    if not isinstance(groups, list) or not groups:
        return None, groups
    bounds = set()
    rest = []
    for group in groups:
        filters = group["filters"]
        found = [
            f
            for f in filters
            if f.get("propertyName") == "hs_object_id" and f.get("operator") in ("GT", "GTE")
        ]
        if len(found) != 1 or _number(_as_text(found[0].get("value"))) is None:
            return None, groups
        bounds.add((_as_text(found[0]["value"]), found[0]["operator"] == "GTE"))
        rest.append({**group, "filters": [f for f in filters if f is not found[0]]})
    if len(bounds) != 1:
        return None, groups
    return bounds.pop(), rest


def sort_key(value: str | None) -> tuple[int, float, str]:
    """Order values as HubSpot does: numbers numerically, then text; no value last."""
    if not value:
        return (2, 0.0, "")
    number = _number(value)
    if number is not None:
        return (0, number, "")
    return (1, 0.0, value.casefold())
