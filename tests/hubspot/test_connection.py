"""HubSpotConnection: host, tokens, scopes, rate limits and retries, with the real client."""

from __future__ import annotations

import random

import pytest
import requests

from connectors.hubspot import (
    HubSpotAuthError,
    HubSpotConnection,
    HubSpotContactSource,
    HubSpotError,
    HubSpotLimits,
    HubSpotRateLimitError,
    HubSpotScopeError,
    RollingWindow,
    rate_limit_wait,
)
from connectors.retry import client_retried
from sandbox.hubspot.app import SCHEMA_READ
from sandbox.hubspot.fixtures import HubSpotSandbox
from tests.hubspot.conftest import ConnectionFactory, FakeTime


def _list(conn: HubSpotConnection) -> int:
    status, _ = conn.request(
        "api", conn.contacts_basic.get_page_with_http_info, what="listing contacts", limit=1
    )
    return status


def test_every_api_class_used_honours_the_host(
    hubspot_sandbox: HubSpotSandbox, conn: HubSpotConnection
) -> None:
    hubspot_sandbox.control("POST", "lists", json={"ids": []})
    calls = {
        "contacts_basic": lambda: _list(conn),
        "contacts_batch": lambda: conn.request(
            "api",
            conn.contacts_batch.read_with_http_info,
            {"inputs": [], "properties": []},
            what="r",
        ),
        "contacts_search": lambda: conn.request(
            "search", conn.contacts_search.do_search_with_http_info, {"limit": 1}, what="s"
        ),
        "properties_core": lambda: conn.properties(),
        "properties_groups": lambda: conn.request(
            "api", conn.properties_groups.get_all_with_http_info, "contacts", what="g"
        ),
        "list_memberships": lambda: conn.request(
            "api", conn.list_memberships.get_page_with_http_info, "1", what="m"
        ),
    }
    for name, call in calls.items():
        api = getattr(conn, name)
        assert api.api_client.configuration.host == hubspot_sandbox.url, name
        call()
    assert hubspot_sandbox.stats()["total"] == len(calls)


def test_an_invalid_or_expired_token_is_refused_without_showing_it(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    with pytest.raises(HubSpotAuthError, match="INVALID_AUTHENTICATION") as bad:
        connect(access_token="pat-na1-not-a-real-token").properties()
    assert "pat-na1-not-a-real-token" not in str(bad.value)
    expired = hubspot_sandbox.new_token(expires_in=0)
    with pytest.raises(HubSpotAuthError, match="expired") as info:
        HubSpotContactSource(connect(access_token=expired)).read()
    assert expired not in str(info.value) and info.value.status == 401
    assert expired not in repr(connect(access_token=expired))


def test_a_missing_scope_is_named(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    token = hubspot_sandbox.new_token([SCHEMA_READ])
    with pytest.raises(HubSpotScopeError, match=r"crm\.objects\.contacts\.read") as info:
        list(HubSpotContactSource(connect(access_token=token)).read())
    assert info.value.scopes == ["crm.objects.contacts.read"]


def test_a_429_under_a_tightened_bucket_is_retried_after_the_headers_wait(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    hubspot_sandbox.seed(30)
    hubspot_sandbox.set_limits(ten_second_limit=3, interval_ms=400)
    # Another app on the account spends the whole window first.
    for _ in range(3):
        requests.get(
            f"{hubspot_sandbox.url}/crm/v3/objects/contacts",
            headers={"Authorization": f"Bearer {hubspot_sandbox.token}"},
            timeout=30,
        ).raise_for_status()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        import time

        time.sleep(seconds)

    conn = connect(limits=HubSpotLimits(per_ten_seconds=100), sleep=sleep)
    assert _list(conn) == 200
    assert conn.rate_limited >= 1
    assert any(0.4 <= s <= 0.6 for s in sleeps), sleeps  # Interval-Milliseconds: 400
    # From then on the client paces to the bucket HubSpot announced: no more 429s.
    before = conn.rate_limited
    for _ in range(8):
        assert _list(conn) == 200
    assert conn.rate_limited == before
    assert hubspot_sandbox.stats()["rate_limited"]["TEN_SECONDLY_ROLLING"] == before


def test_a_search_429_waits_a_second_and_the_daily_limit_is_not_retried(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    hubspot_sandbox.set_limits(search_per_second=1, search_interval_ms=200)
    fake = FakeTime()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        import time

        time.sleep(min(seconds, 0.25))

    conn = connect(sleep=sleep, clock=fake.clock, rng=random.Random(1))
    for _ in range(2):
        conn.request("search", conn.contacts_search.do_search_with_http_info, {}, what="s")
    assert conn.rate_limited >= 1 and any(w >= 1.0 for w in waits)
    hubspot_sandbox.set_limits(daily_limit=0)
    with pytest.raises(HubSpotRateLimitError, match="DAILY"):
        _list(conn)


def test_server_errors_and_dropped_connections_are_retried(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    hubspot_sandbox.seed(400)
    hubspot_sandbox.control("PUT", "faults", json={"error_rate": 0.3, "drop_rate": 0.1, "seed": 7})
    conn = connect(sleep=lambda s: None, rng=random.Random(3))
    items = list(HubSpotContactSource(conn).read())
    assert len(items) == 400 and len({i.source_id for i in items}) == 400
    assert conn.retries >= 1


def test_a_server_error_that_outlasts_the_retries_is_marked_as_retried(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    hubspot_sandbox.seed(5)
    hubspot_sandbox.control("PUT", "faults", json={"error_rate": 1.0, "seed": 7})
    conn = connect(sleep=lambda s: None, rng=random.Random(3))
    with pytest.raises(HubSpotError) as info:
        list(HubSpotContactSource(conn).read())
    # One retry layer: the Prefect task retry condition leaves what the client retried.
    assert client_retried(info.value)


def test_rolling_window_waits_for_the_oldest_answer_to_leave_the_window() -> None:
    fake = FakeTime()
    window = RollingWindow(3, 10.0, clock=fake.clock, sleep=fake.sleep, margin=0.5)
    for _ in range(3):
        assert window.acquire() == 0
        fake.now += 1
        window.release()
    # Answers at 1001, 1002, 1003: the 4th request may go at 1001 + 10 + 0.5.
    window.acquire()
    window.release()
    assert fake.now == pytest.approx(1011.5)
    # HubSpot reports another app used the window: the client counts those requests too.
    fake.now += 20
    window.observe({"x-hubspot-ratelimit-remaining": "0", "x-hubspot-ratelimit-max": "3"})
    start = fake.now
    window.acquire()
    assert fake.now - start >= 10


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "3"}, {}, 3.0),
        (
            {"x-hubspot-ratelimit-interval-milliseconds": "10000"},
            {"policyName": "TEN_SECONDLY_ROLLING"},
            10.0,
        ),
        ({}, {"policyName": "SECONDLY"}, 1.0),
        ({}, None, 2.5),
    ],
)
def test_rate_limit_wait_reads_hubspots_headers(
    headers: dict[str, str], body: object, expected: float
) -> None:
    assert rate_limit_wait(headers, body, default=2.5) == expected


def test_connection_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="token"):
        HubSpotConnection(access_token=" ")
    with pytest.raises(ValueError, match="http"):
        HubSpotConnection(access_token="t", base_url="api.hubapi.com")
    with pytest.raises(ValueError, match="at least one"):
        HubSpotLimits(per_ten_seconds=0)
