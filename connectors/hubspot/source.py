"""HubSpot contacts as a `LeadSource`: full reads by the objects API, incremental ones by CRM search.

Incremental reads survive HubSpot's cap of 10,000 results per search by never paging one
search far: every search is anchored on the cursor ``(lastmodifieddate, hs_object_id)``.

* Sorted by ``lastmodifieddate``, each search asks for contacts modified at or after the last
  timestamp read (strictly after `since` for the first), up to the time the read started, 200
  a page. Contacts of the last timestamp on a page are remembered by id, so asking again "at or
  after" it re-reads only those few, never skips the rest of their timestamp and never yields
  one twice.
* A page whose contacts all share one timestamp (a bulk import: 20,000 contacts can carry the
  same ``lastmodifieddate``) switches to that timestamp alone, sorted by ``hs_object_id`` and
  anchored on the last id read, until it is exhausted; then the read goes on after it.

Every search moves the cursor strictly forward (a later timestamp, or a larger id within one),
so the read ends; none pages with ``after``, so none meets the 10,000 cap or shifts under a
contact edited mid-read. Contacts modified after the read started are left to the next read.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from connectors.hubspot.connection import HubSpotConnection, PropertyInfo
from connectors.hubspot.errors import HubSpotApiError, HubSpotFilterError
from connectors.hubspot.filters import Filter, search_filters
from connectors.leads import (
    FieldMapping,
    Lead,
    LeadBuilder,
    MappingError,
    Reject,
    ResolvedMapping,
)

__all__ = [
    "DEFAULT_MAPPING",
    "DEFAULT_OPT_OUT_PROPERTIES",
    "MAX_USER_FILTERS",
    "NON_MARKETING",
    "HubSpotContactSource",
]

DEFAULT_MAPPING = FieldMapping(
    email="email", first_name="firstname", last_name="lastname", company="company"
)
# HubSpot's "Unsubscribed from all email" checkbox, set when a contact opts out of all email.
DEFAULT_OPT_OUT_PROPERTIES = ("hs_email_optout",)
# A derived column: "true" for a non-marketing contact (hs_marketable_status = false).
NON_MARKETING = "coldsend:non_marketing"
# HubSpot allows 6 filters per group; the cursor takes 2.
MAX_USER_FILTERS = 4
_SEARCH_PAGE = 200
_LIST_PAGE = 100
_MEMBERS_PAGE = 250
_BATCH = 100


_DONE = object()


def read_ahead(
    records: Iterator[Mapping[str, Any]], *, batch: int = 100, depth: int = 2
) -> Iterator[Mapping[str, Any]]:
    """`records`, produced by a background thread up to `depth` batches ahead of the caller.

    The thread runs the page-fetching generator: while the caller builds leads from one page,
    the next page's request is already on its way. An error in the thread is raised to the
    caller; a caller that stops early stops the thread after its current request.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            buffer: list[Mapping[str, Any]] = []
            for record in records:
                buffer.append(record)
                if len(buffer) >= batch:
                    if not put(buffer):
                        return
                    buffer = []
            if (not buffer or put(buffer)) and put(_DONE):
                return
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)

    worker = threading.Thread(target=produce, name="hubspot-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from cast(list[Mapping[str, Any]], item)
    finally:
        stop.set()


def _stamp_ms(value: str) -> int:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


class HubSpotContactSource:
    """Reads HubSpot contacts as `Lead` / `Reject` values, page by page.

    Without `since`, filters or a list: the objects API, 100 contacts a request. With `since`
    or filters: CRM search, `page_size` a request (see the module docstring for the cursor).
    With `list_id`: the list's memberships (250 a request) and batch reads (100 a request),
    `since` applied to what was read (lists cannot be searched by date).
    After a read, `high_water_mark` is the largest ``lastmodifieddate`` seen.

    Example:
        ```python
        source = HubSpotContactSource(conn, filters=[("lifecyclestage", "=", "lead")])
        for item in source.read(since=cursor):
            ...
        cursor = source.high_water_mark
        ```
    """

    def __init__(
        self,
        conn: HubSpotConnection,
        *,
        mapping: FieldMapping | None = None,
        filters: Iterable[Filter] = (),
        list_id: str | None = None,
        opt_out_properties: Sequence[str] = DEFAULT_OPT_OUT_PROPERTIES,
        non_marketing_opted_out: bool = False,
        page_size: int = _SEARCH_PAGE,
        clock: Callable[[], float] = time.time,
        read_ahead: bool = True,
    ) -> None:
        """Args:
        conn: The connection to read through.
        mapping: Contact property for each lead field; email, firstname, lastname, company.
        filters: Structured filters ANDed onto the read (at most 4; see
            `connectors.hubspot.filters`). Not with `list_id`.
        list_id: Read only the members of this HubSpot list (its ILS list id).
        opt_out_properties: Properties whose "true" marks a contact opted out of email
            (`Lead.opted_out`); each must exist. Empty: opt-outs are not read (the store's
            explicit override).
        non_marketing_opted_out: Also treat non-marketing contacts (hs_marketable_status
            false) as opted out.
        page_size: Contacts per search request, 100 to 200.
        clock: Wall time in seconds (the read's upper bound on lastmodifieddate).
        read_ahead: Request the next page while the caller works through this one (one
            background thread, at most two pages held), so the caller's time per page does
            not add to the request's round trip.
        """
        if not 100 <= page_size <= _SEARCH_PAGE:
            raise ValueError(f"page_size must be between 100 and {_SEARCH_PAGE}, got {page_size}")
        self.conn = conn
        self.mapping = mapping or DEFAULT_MAPPING
        self.filters: list[Filter] = [tuple(f) for f in filters]
        if len(self.filters) > MAX_USER_FILTERS:
            raise HubSpotFilterError(
                f"at most {MAX_USER_FILTERS} filters (HubSpot allows 6 per search; the read's "
                f"cursor takes 2), got {len(self.filters)}; use 'in' to match several values"
            )
        if list_id is not None and self.filters:
            raise HubSpotFilterError("narrow a HubSpot store by a list or by filters, not both")
        if list_id is not None and not str(list_id).strip().isdigit():
            raise HubSpotFilterError(f"list_id must be a HubSpot list id (digits), got {list_id!r}")
        self.list_id = str(list_id).strip() if list_id is not None else None
        self.opt_out_properties = tuple(opt_out_properties)
        self.non_marketing_opted_out = non_marketing_opted_out
        self.page_size = page_size
        self._clock = clock
        self.read_ahead = read_ahead
        self.high_water_mark: datetime | None = None
        self.resolved_mapping: ResolvedMapping | None = None
        self.last_read_api: str | None = None
        self.searches = 0

    def __repr__(self) -> str:
        return (
            f"HubSpotContactSource(filters={self.filters!r}, list_id={self.list_id!r}, "
            f"opt_out_properties={self.opt_out_properties!r})"
        )

    def read(self, *, since: datetime | None = None) -> Iterator[Lead | Reject]:
        """Stream contacts modified after `since` (all when None) as `Lead` or `Reject`.

        Checks the mapping, the opt-out properties and the filters against the account's
        contact properties before reading any contact: those problems raise here.

        Raises:
            MappingError: a mapped or opt-out property the account does not have.
            HubSpotFilterError: a filter naming an unknown property or a bad value.
            HubSpotError: HubSpot refused a request.
        """
        props = self.conn.properties()
        resolved = self.mapping.resolve(list(props), source="HubSpot contacts")
        opt_out = self._opt_out_columns(props)
        resolved = resolved.with_opt_out(opt_out)
        # An account's other properties are not columns someone exported and forgot: none is
        # reported unused.
        self.resolved_mapping = ResolvedMapping(
            resolved.columns, resolved.opt_out, recognised=resolved.recognised
        )
        fetch = [c for c in resolved.source_columns if c != NON_MARKETING]
        if self.non_marketing_opted_out:
            fetch.append("hs_marketable_status")
        fetch = list(dict.fromkeys([*fetch, "lastmodifieddate"]))
        user = search_filters(self.filters, props)
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        builder = LeadBuilder(resolved)
        if self.list_id is not None:
            self.last_read_api = "lists"
            records = self._list_records(fetch, since)
        elif since is None and not user:
            self.last_read_api = "objects"
            records = self._all_records(fetch)
        else:
            self.last_read_api = "search"
            since_ms = math.floor(since.timestamp() * 1000) if since is not None else None
            records = self._search_records(fetch, user, since_ms)
        if self.read_ahead:
            records = read_ahead(records)
        return self._leads(records, builder)

    def _opt_out_columns(self, props: Mapping[str, PropertyInfo]) -> list[str]:
        missing = [p for p in self.opt_out_properties if p not in props]
        if missing:
            raise MappingError(
                f"HubSpot contacts have no opt-out property {', '.join(repr(m) for m in missing)}. "
                "Correct the store's opt-out setting, or set ignore_store_opt_outs on the store "
                "to sync without honouring HubSpot opt-outs."
            )
        columns = list(self.opt_out_properties)
        if self.non_marketing_opted_out:
            if "hs_marketable_status" not in props:
                raise MappingError("HubSpot contacts have no hs_marketable_status property")
            columns.append(NON_MARKETING)
        return columns

    def _leads(
        self, records: Iterator[Mapping[str, Any]], builder: LeadBuilder
    ) -> Iterator[Lead | Reject]:
        build = builder.build
        high = self.high_water_mark
        non_marketing = self.non_marketing_opted_out
        for record in records:
            props = record.get("properties") or {}
            stamp = datetime.fromisoformat(str(props["lastmodifieddate"]).replace("Z", "+00:00"))
            if high is None or stamp > high:
                high = stamp
                self.high_water_mark = stamp
            if non_marketing:
                props = {
                    **props,
                    NON_MARKETING: str(props.get("hs_marketable_status", "")).lower() == "false",
                }
            yield build(props, source_id=str(record["id"]), modified_at=stamp)

    # -- full read ------------------------------------------------------------------------------

    def _all_records(self, fetch: list[str]) -> Iterator[Mapping[str, Any]]:
        api = self.conn.contacts_basic
        after: str | None = None
        seen: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"limit": _LIST_PAGE, "properties": fetch, "archived": False}
            if after is not None:
                kwargs["after"] = after
            _, body = self.conn.request(
                "api", api.get_page_with_http_info, what="reading contacts", **kwargs
            )
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            if after in seen:
                raise HubSpotApiError(f"HubSpot returned the paging cursor {after!r} twice")
            seen.add(after)

    # -- incremental read ---------------------------------------------------------------------

    def _search(
        self, filters: list[dict[str, Any]], sort: str, fetch: list[str]
    ) -> list[dict[str, Any]]:
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": fetch,
            "limit": self.page_size,
        }
        self.searches += 1
        _, answer = self.conn.request(
            "search",
            self.conn.contacts_search.do_search_with_http_info,
            body,
            what="searching contacts",
        )
        return list((answer or {}).get("results") or [])

    def _search_records(
        self, fetch: list[str], user: list[dict[str, Any]], since_ms: int | None
    ) -> Iterator[Mapping[str, Any]]:
        upper = {
            "propertyName": "lastmodifieddate",
            "operator": "LTE",
            "value": str(int(self._clock() * 1000)),
        }
        page = self.page_size
        lower: tuple[str, int] | None = ("GT", since_ms) if since_ms is not None else None
        seen: set[str] = set()  # ids read at the anchor timestamp
        while True:
            filters = list(user)
            if lower is not None:
                filters.append(
                    {
                        "propertyName": "lastmodifieddate",
                        "operator": lower[0],
                        "value": str(lower[1]),
                    }
                )
            filters.append(upper)
            results = self._search(filters, "lastmodifieddate", fetch)
            if not results:
                return
            first = _stamp_ms(results[0]["properties"]["lastmodifieddate"])
            last = _stamp_ms(results[-1]["properties"]["lastmodifieddate"])
            if last < first or (lower is not None and first < lower[1]):
                # The cursor only moves forward on sorted answers; never loop on others.
                raise HubSpotApiError(
                    "HubSpot's search answered contacts out of lastmodifieddate order "
                    f"({first} .. {last} after {lower})"
                )
            if len(results) >= page and first == last:
                # A whole page at one timestamp: read that timestamp by id, then go past it.
                yield from self._one_timestamp(
                    fetch, user, last, seen if lower == ("GTE", last) else set()
                )
                lower, seen = ("GT", last), set()
                continue
            anchor = lower[1] if lower is not None and lower[0] == "GTE" else None
            for record in results:
                if (
                    anchor is not None
                    and record["id"] in seen
                    and _stamp_ms(record["properties"]["lastmodifieddate"]) == anchor
                ):
                    continue
                yield record
            if len(results) < page:
                return
            tail = {
                r["id"] for r in results if _stamp_ms(r["properties"]["lastmodifieddate"]) == last
            }
            seen = seen | tail if lower == ("GTE", last) else tail
            lower = ("GTE", last)

    def _one_timestamp(
        self, fetch: list[str], user: list[dict[str, Any]], stamp: int, skip: set[str]
    ) -> Iterator[Mapping[str, Any]]:
        """Every contact modified at exactly `stamp`, by ascending id, except the `skip` ids."""
        last_id: int | None = None
        while True:
            filters = [
                *user,
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(stamp)},
            ]
            if last_id is not None:
                filters.append(
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
                )
            results = self._search(filters, "hs_object_id", fetch)
            for record in results:
                if record["id"] not in skip:
                    yield record
            if len(results) < self.page_size:
                return
            next_id = int(results[-1]["id"])
            if last_id is not None and next_id <= last_id:
                raise HubSpotApiError(
                    f"HubSpot's search did not move past contact {last_id} sorted by hs_object_id"
                )
            last_id = next_id

    # -- list read ------------------------------------------------------------------------------

    def _list_records(
        self, fetch: list[str], since: datetime | None
    ) -> Iterator[Mapping[str, Any]]:
        after: str | None = None
        seen: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"limit": _MEMBERS_PAGE}
            if after is not None:
                kwargs["after"] = after
            _, body = self.conn.request(
                "api",
                self.conn.list_memberships.get_page_with_http_info,
                self.list_id,
                what=f"reading the members of HubSpot list {self.list_id}",
                **kwargs,
            )
            ids = [str(m["recordId"]) for m in body.get("results") or []]
            for start in range(0, len(ids), _BATCH):
                for record in self._batch_read(ids[start : start + _BATCH], fetch):
                    if since is not None:
                        stamp = datetime.fromisoformat(
                            str(record["properties"]["lastmodifieddate"]).replace("Z", "+00:00")
                        )
                        if stamp <= since:
                            continue
                    yield record
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            if after in seen:
                raise HubSpotApiError(f"HubSpot returned the list paging cursor {after!r} twice")
            seen.add(after)

    def _batch_read(self, ids: list[str], fetch: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        body = {
            "inputs": [{"id": i} for i in ids],
            "properties": fetch,
            "propertiesWithHistory": [],
        }
        # A list member deleted since it joined comes back in a 207's errors: not a contact.
        _, answer = self.conn.request(
            "api",
            self.conn.contacts_batch.read_with_http_info,
            body,
            what="reading contacts by id",
            archived=False,
        )
        return list((answer or {}).get("results") or [])
