"""CRM search for the HubSpot emulator: filter groups, one sort, ``after`` paging, the 10,000 cap.

Rules as HubSpot documents them: filter groups are ORed, the filters of a group ANDed; at most
5 groups, 6 filters per group, 18 in all; one sort; at most 200 results a page; and no paging
past the 10,000th result of one search (a 400, however many match). String comparisons ignore
case. Datetime values compare as epoch milliseconds (a filter may give ms or ISO 8601).

A search that only bounds ``lastmodifieddate`` (and, within one timestamp, ``hs_object_id``)
and sorts by one of them is answered from the store's sorted index without touching each
record, so incremental reads of 200,000 contacts stay fast; every other search scans.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.store import Contact, ContactStore, PropertyDef, parse_ms

__all__ = [
    "MAX_FILTERS",
    "MAX_FILTERS_PER_GROUP",
    "MAX_GROUPS",
    "MAX_LIMIT",
    "RESULT_CAP",
    "SearchError",
    "SearchPage",
    "run_search",
]

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
RESULT_CAP = 10_000
_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_RANGE = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})
_QUERY_FIELDS = ("email", "firstname", "lastname", "company", "phone")
_MAX_MS = 1 << 62


class SearchError(ValueError):
    """A search HubSpot would refuse with a 400; the message is HubSpot's kind of message."""


@dataclass(slots=True)
class SearchPage:
    total: int
    contacts: list[Contact]
    next_after: int | None


Predicate = Callable[[Contact], bool]


def _number(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _key_fn(prop: PropertyDef) -> Callable[[object], Any]:
    if prop.type == "number":
        return _number
    if prop.type in ("datetime", "date"):
        return parse_ms
    return lambda v: None if v is None else str(v).strip().lower()


def _compile_filter(raw: Mapping[str, Any], props: Mapping[str, PropertyDef]) -> Predicate:
    name = raw.get("propertyName")
    operator = str(raw.get("operator", "EQ")).upper()
    if not isinstance(name, str) or not name:
        raise SearchError("Each filter needs a propertyName.")
    if operator not in _OPERATORS:
        raise SearchError(f"Invalid operator {operator!r} for property {name!r}.")
    prop = props.get(name)
    if prop is None:
        raise SearchError(f"Property {name!r} does not exist on object type contacts.")
    key = _key_fn(prop)

    def held(c: Contact) -> Any:
        return key(c.value(name))

    if operator == "HAS_PROPERTY":
        return lambda c: c.value(name) not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return lambda c: c.value(name) in (None, "")
    if operator in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"Operator {operator} on {name!r} needs a non-empty 'values' list.")
        wanted = {key(v) for v in values}
        if operator == "IN":
            return lambda c: held(c) in wanted
        return lambda c: held(c) not in wanted
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(raw.get("value", "")).strip().lower()
        if not token:
            raise SearchError(f"Operator {operator} on {name!r} needs a value.")
        pattern = token.strip("*")

        def contains(c: Contact) -> bool:
            text = (c.value(name) or "").lower()
            return pattern in text

        return contains if operator == "CONTAINS_TOKEN" else (lambda c: not contains(c))
    if "value" not in raw:
        raise SearchError(f"Operator {operator} on {name!r} needs a value.")
    value = key(raw.get("value"))
    if value is None:
        raise SearchError(f"Value {raw.get('value')!r} is not valid for property {name!r}.")
    if operator == "EQ":
        return lambda c: held(c) == value
    if operator == "NEQ":
        return lambda c: held(c) != value
    if operator == "BETWEEN":
        high = key(raw.get("highValue"))
        if high is None:
            raise SearchError(f"BETWEEN on {name!r} needs a valid highValue.")
        return lambda c: (v := held(c)) is not None and value <= v <= high
    compare: Callable[[Any], bool] = {
        "GT": lambda v: v > value,
        "GTE": lambda v: v >= value,
        "LT": lambda v: v < value,
        "LTE": lambda v: v <= value,
    }[operator]
    return lambda c: (v := held(c)) is not None and compare(v)


def _bounds(filters: Sequence[Mapping[str, Any]], name: str) -> tuple[int, int] | None:
    """The inclusive integer range the group's filters on `name` allow; None if one is not a range."""
    lo, hi = -_MAX_MS, _MAX_MS
    for raw in filters:
        if raw.get("propertyName") != name:
            continue
        op = str(raw.get("operator", "EQ")).upper()
        if op not in _RANGE:
            return None
        value = parse_ms(raw.get("value")) if name == "lastmodifieddate" else _int(raw.get("value"))
        if value is None:
            return None
        if op == "EQ":
            lo, hi = max(lo, value), min(hi, value)
        elif op == "GT":
            lo = max(lo, value + 1)
        elif op == "GTE":
            lo = max(lo, value)
        elif op == "LT":
            hi = min(hi, value - 1)
        elif op == "LTE":
            hi = min(hi, value)
        else:
            high = (
                parse_ms(raw.get("highValue"))
                if name == "lastmodifieddate"
                else _int(raw.get("highValue"))
            )
            if high is None:
                return None
            lo, hi = max(lo, value), min(hi, high)
    return lo, hi


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _fast(
    store: ContactStore,
    groups: Sequence[Sequence[Mapping[str, Any]]],
    sort: tuple[str, bool] | None,
) -> Sequence[int] | None:
    """Ids in result order from the (lastmodifieddate, id) index, or None when it cannot serve."""
    if len(groups) != 1:
        return None
    filters = groups[0]
    if any(f.get("propertyName") not in ("lastmodifieddate", "hs_object_id") for f in filters):
        return None
    mod = _bounds(filters, "lastmodifieddate")
    ids = _bounds(filters, "hs_object_id")
    if mod is None or ids is None:
        return None
    one_stamp = mod[0] == mod[1]
    if sort is None or sort[0] not in ("lastmodifieddate", "hs_object_id"):
        return None
    if sort[0] == "hs_object_id" and not one_stamp:
        return None
    if ids != (-_MAX_MS, _MAX_MS) and not one_stamp:
        return None
    index = store.by_modified()
    start = bisect.bisect_left(index, (mod[0], ids[0]))
    end = bisect.bisect_right(index, (mod[1], ids[1]))
    return _IndexRange(index, start, end, ascending=sort[1])


class _IndexRange(Sequence[int]):
    """Ids of a slice of the (lastmodifieddate, id) index, read lazily (a page, not 200,000)."""

    def __init__(self, index: list[tuple[int, int]], start: int, end: int, *, ascending: bool):
        self._index, self._start, self._end, self._ascending = index, start, end, ascending

    def __len__(self) -> int:
        return max(0, self._end - self._start)

    def __getitem__(self, item: Any) -> Any:
        if not isinstance(item, slice):
            raise TypeError("only slices are read")
        first, last, _ = item.indices(len(self))
        if first >= last:
            return []
        if self._ascending:
            return [cid for _, cid in self._index[self._start + first : self._start + last]]
        rows = self._index[self._end - last : self._end - first]
        return [cid for _, cid in reversed(rows)]


def run_search(store: ContactStore, body: Mapping[str, Any]) -> SearchPage:
    """Answer one search request body, as HubSpot would, or raise `SearchError`."""
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise SearchError("limit must be a non-negative integer.")
    if limit > MAX_LIMIT:
        raise SearchError(f"limit must be at most {MAX_LIMIT}; got {limit}.")
    after_raw = body.get("after") or "0"
    after = _int(after_raw)
    if after is None or after < 0:
        raise SearchError(f"Invalid after value {after_raw!r}.")
    if after >= RESULT_CAP:
        raise SearchError(
            f"There was a problem with the request. Cannot page past {RESULT_CAP} results "
            f"(after={after})."
        )
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise SearchError("filterGroups must be a list.")
    if len(raw_groups) > MAX_GROUPS:
        raise SearchError(
            f"Too many filter groups ({len(raw_groups)}); the maximum is {MAX_GROUPS}."
        )
    groups: list[list[Mapping[str, Any]]] = []
    for group in raw_groups:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise SearchError("Each filter group needs a 'filters' list.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a group ({len(filters)}); the maximum is {MAX_FILTERS_PER_GROUP}."
            )
        groups.append([f for f in filters if isinstance(f, Mapping)])
    if sum(len(g) for g in groups) > MAX_FILTERS:
        raise SearchError(f"Too many filters in all; the maximum is {MAX_FILTERS}.")
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list.")
    if len(sorts) > 1:
        raise SearchError("Only one sort is supported per search request.")
    sort: tuple[str, bool] | None = None
    if sorts:
        first = sorts[0]
        if isinstance(first, str):
            sort = (first.lstrip("-"), not first.startswith("-"))
        elif isinstance(first, Mapping) and isinstance(first.get("propertyName"), str):
            direction = str(first.get("direction", "ASCENDING")).upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise SearchError(f"Invalid sort direction {direction!r}.")
            sort = (first["propertyName"], direction == "ASCENDING")
        else:
            raise SearchError("Each sort needs a propertyName.")
        if sort[0] not in store.properties:
            raise SearchError(f"Property {sort[0]!r} does not exist on object type contacts.")
    query = str(body.get("query") or "").strip().lower()

    with store.lock:
        compiled = [[_compile_filter(f, store.properties) for f in g] for g in groups]
        ids: Sequence[int] | None = None if query else _fast(store, groups, sort)
        if ids is None:
            ids = _scan(store, compiled, query, sort)
        total = len(ids)
        page_ids = ids[after : after + limit]
        contacts = [store.contacts[cid] for cid in page_ids]
    next_after = after + limit if after + limit < total and limit else None
    return SearchPage(total=total, contacts=contacts, next_after=next_after)


def _scan(
    store: ContactStore,
    compiled: Sequence[Sequence[Predicate]],
    query: str,
    sort: tuple[str, bool] | None,
) -> list[int]:
    matches: list[Contact] = []
    for contact in store.contacts.values():
        if compiled and not any(all(p(contact) for p in group) for group in compiled):
            continue
        if query and not any(query in (contact.value(f) or "").lower() for f in _QUERY_FIELDS):
            continue
        matches.append(contact)
    if sort is None:
        matches.sort(key=lambda c: c.id)
    else:
        name, ascending = sort
        key = _key_fn(store.properties[name])
        present = [(key(c.value(name)), c.id) for c in matches]
        with_value = sorted((k, cid) for k, cid in present if k is not None)
        if not ascending:
            with_value.reverse()
        missing = sorted(cid for k, cid in present if k is None)
        return [cid for _, cid in with_value] + missing
    return [c.id for c in matches]
