"""Structured contact filters turned into CRM search filters: checked, typed, never raw strings.

A filter is ``(property, operator, value)``, like the Salesforce store's: operators ``=``,
``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in`` (a list value), ``contains`` (a word),
``is set`` and ``is not set`` (no value). Values travel as JSON values in the search body, so
nothing can change the query's structure; we still refuse what HubSpot would read differently
from what the user meant: an unknown property, an option an enumeration does not have, a
``*`` wildcard in ``contains``, a datetime without a time zone, control characters.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from connectors.hubspot.connection import PropertyInfo
from connectors.hubspot.errors import HubSpotFilterError

__all__ = ["OPERATORS", "Filter", "search_filters"]

Filter = tuple[str, str, Any]

OPERATORS: Mapping[str, str] = {
    "=": "EQ",
    "!=": "NEQ",
    "<": "LT",
    "<=": "LTE",
    ">": "GT",
    ">=": "GTE",
    "in": "IN",
    "not in": "NOT_IN",
    "contains": "CONTAINS_TOKEN",
    "is set": "HAS_PROPERTY",
    "is not set": "NOT_HAS_PROPERTY",
}
_NO_VALUE = frozenset({"HAS_PROPERTY", "NOT_HAS_PROPERTY"})
_LISTS = frozenset({"IN", "NOT_IN"})


def _value(prop: PropertyInfo, value: Any, *, where: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise HubSpotFilterError(f"{where}: give the datetime a time zone (e.g. UTC)")
        text = str(int(value.timestamp() * 1000))
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise HubSpotFilterError(f"{where}: unsupported value type {type(value).__name__}")
    if any(ord(ch) < 32 for ch in text):
        raise HubSpotFilterError(f"{where}: the value contains control characters")
    if prop.type == "number":
        try:
            float(text)
        except ValueError:
            raise HubSpotFilterError(f"{where}: {text!r} is not a number") from None
    if prop.type == "bool" and text.lower() not in ("true", "false"):
        raise HubSpotFilterError(f"{where}: {text!r} is not true or false")
    if (
        prop.type == "enumeration"
        and prop.options
        and prop.type != "bool"
        and text not in prop.options
    ):
        shown = ", ".join(repr(o) for o in prop.options[:20])
        raise HubSpotFilterError(f"{where}: {text!r} is not an option of {prop.name!r} ({shown})")
    return text


def search_filters(
    filters: Iterable[Filter], properties: Mapping[str, PropertyInfo]
) -> list[dict[str, Any]]:
    """HubSpot search filters (one AND group) for `filters`, or `HubSpotFilterError`."""
    out: list[dict[str, Any]] = []
    for index, item in enumerate(filters, start=1):
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 3:
            raise HubSpotFilterError(
                f"filter {index} must be [property, operator, value], got {item!r}"
            )
        name, op, value = item
        where = f"filter {index} ({name!r} {op} ...)"
        prop = properties.get(str(name))
        if prop is None:
            close = difflib.get_close_matches(str(name), list(properties), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise HubSpotFilterError(f"{where}: HubSpot contacts have no property {name!r}.{hint}")
        operator = OPERATORS.get(str(op).strip().lower())
        if operator is None:
            raise HubSpotFilterError(
                f"{where}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}"
            )
        entry: dict[str, Any] = {"propertyName": prop.name, "operator": operator}
        if operator in _NO_VALUE:
            if value not in (None, "", True):
                raise HubSpotFilterError(f"{where}: {op!r} takes no value")
        elif operator in _LISTS:
            if not isinstance(value, list | tuple) or not value:
                raise HubSpotFilterError(f"{where}: {op!r} needs a non-empty list of values")
            texts = [_value(prop, v, where=where) for v in value]
            # HubSpot matches string IN values in lower case only.
            entry["values"] = [t.lower() for t in texts] if prop.type == "string" else texts
        else:
            text = _value(prop, value, where=where)
            if operator == "CONTAINS_TOKEN" and "*" in text:
                raise HubSpotFilterError(
                    f"{where}: '*' is a wildcard in HubSpot's contains; give a plain word"
                )
            entry["value"] = text
        out.append(entry)
    return out
