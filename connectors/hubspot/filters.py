"""The user's HubSpot search filters: validated at config load, then ANDed into every group.

A source's `filters:` is a list of HubSpot filter dicts `{propertyName, operator, value}`
(`values` for IN/NOT_IN, `highValue` for BETWEEN). Each search group also holds the gap filter,
the opt-out filter and the keyset filter, so at most 7 user filters fit HubSpot's 10 a group.
"""

from __future__ import annotations

from typing import Any

from crm_sync.errors import ValidationError

VALUE_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
LIST_OPERATORS = {"IN", "NOT_IN"}
PRESENCE_OPERATORS = {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}
OPERATORS = VALUE_OPERATORS | LIST_OPERATORS | PRESENCE_OPERATORS | {"BETWEEN"}
FILTER_KEYS = {"propertyName", "operator", "value", "values", "highValue"}
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS_TOTAL = 25
MAX_GROUPS = 5
# Each group also holds the gap filter, the opt-out filter and the keyset filter.
MAX_USER_FILTERS = MAX_FILTERS_PER_GROUP - 3


def validate_filters(filters: Any) -> list[str]:
    """Problems with a list of HubSpot filter dicts, as `filters...: message` lines."""
    if filters is None:
        return []
    if not isinstance(filters, list):
        return ["filters: must be a list of HubSpot filters {propertyName, operator, value}"]
    problems = [p for i, item in enumerate(filters) for p in _filter_problems(i, item)]
    if len(filters) > MAX_USER_FILTERS:
        problems.append(
            f"filters: at most {MAX_USER_FILTERS} filters (HubSpot allows "
            f"{MAX_FILTERS_PER_GROUP} a group and crm-sync adds up to 3); got {len(filters)}"
        )
    return problems


def _filter_problems(index: int, item: Any) -> list[str]:
    where = f"filters[{index}]"
    if not isinstance(item, dict):
        return [f"{where}: must be a mapping with propertyName and operator"]
    problems = [f"{where}.{key}: unknown key" for key in sorted(set(item) - FILTER_KEYS)]
    if not isinstance(item.get("propertyName"), str) or not item["propertyName"].strip():
        problems.append(f"{where}.propertyName: required, a HubSpot property name")
    op = item.get("operator")
    if op not in OPERATORS:
        problems.append(f"{where}.operator: unknown operator {op!r}; known: {sorted(OPERATORS)}")
    elif op in LIST_OPERATORS:
        values = item.get("values")
        if not isinstance(values, list) or not values or "value" in item:
            problems.append(f"{where}.values: {op} needs a non-empty list `values`, no `value`")
    elif op in PRESENCE_OPERATORS:
        if "value" in item or "values" in item:
            problems.append(f"{where}.operator: {op} takes no value")
    elif not isinstance(item.get("value"), str | int | float | bool):
        problems.append(f"{where}.value: {op} needs a `value`")
    elif op == "BETWEEN" and not isinstance(item.get("highValue"), str | int | float):
        problems.append(f"{where}.highValue: BETWEEN needs a `highValue`")
    return problems


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _wire_filter(item: dict[str, Any]) -> dict[str, Any]:
    """A user filter with scalar values as the strings HubSpot's schema wants."""
    out: dict[str, Any] = {"propertyName": item["propertyName"], "operator": item["operator"]}
    for key in ("value", "highValue"):
        if key in item:
            out[key] = _text(item[key])
    if "values" in item:
        out["values"] = [_text(v) for v in item["values"]]
    return out


def build_groups(
    gap_properties: list[str],
    user_filters: Any,
    opt_out_field: str | None,
    after_id: int | None,
) -> list[dict[str, Any]]:
    """One group per property to fill, each ANDed with the user's, opt-out and keyset filters."""
    common = [_wire_filter(f) for f in user_filters or []]
    if opt_out_field:
        common.append({"propertyName": opt_out_field, "operator": "NEQ", "value": "true"})
    if after_id is not None:
        common.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)})
    groups = [
        {"filters": [{"propertyName": prop, "operator": "NOT_HAS_PROPERTY"}, *common]}
        for prop in gap_properties
    ]
    total = sum(len(g["filters"]) for g in groups)
    widest = max((len(g["filters"]) for g in groups), default=0)
    if len(groups) > MAX_GROUPS or total > MAX_FILTERS_TOTAL or widest > MAX_FILTERS_PER_GROUP:
        raise ValidationError("too many filters for HubSpot's search limits", code="FILTERS")
    return groups
