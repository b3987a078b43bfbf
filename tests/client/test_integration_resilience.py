"""Rate limits, injected 5xx, dropped connections and timeouts against the ColdSend emulator."""

from __future__ import annotations

import socket
import time

import pytest

from connectors.coldsend import (
    APIConnectionError,
    APITimeoutError,
    ColdSendClient,
    InternalServerError,
    RateLimitError,
    upload_leads,
)
from connectors.leads import Lead
from connectors.retry import client_retried
from sandbox.coldsend.fixtures import ColdSendControl


@pytest.fixture
def fresh_minute() -> None:
    """Windows are real clock minutes: start a counting test well inside one."""
    second = time.time() % 60
    if second > 55:
        time.sleep(60.5 - second)


class WindowSkipper:
    """A `sleep` for the client that, instead of waiting out a rate-limit window, lifts the limit.

    The emulator's windows are real minutes and hours; a test cannot wait for them. Lifting the
    limit when the client decides to wait has the same effect on the next request, and the
    recorded waits show what the client would have slept.
    """

    def __init__(self, sandbox: ColdSendControl, *, only_full_waits: bool = False) -> None:
        self.sandbox = sandbox
        self.only_full_waits = only_full_waits
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        to_reset = 60 - time.time() % 60
        if not self.only_full_waits or seconds >= to_reset - 1:
            self.sandbox.set_limits(per_minute=1_000_000, per_hour=1_000_000)


def test_429_without_retry_after_waits_until_the_reset(
    coldsend_sandbox: ColdSendControl, fresh_minute: None
) -> None:
    coldsend_sandbox.set_limits(per_minute=3, retry_after_header=False)
    key = coldsend_sandbox.new_key(["*"])
    skipper = WindowSkipper(coldsend_sandbox)
    with ColdSendClient(
        key, base_url=coldsend_sandbox.base_url, pacing=False, sleep=skipper
    ) as client:
        for _ in range(4):
            client.list_campaigns()
        to_reset = 60 - time.time() % 60
        assert client.stats.rate_limited == 1
        assert client.request_count == 5
    (wait,) = skipper.waits
    # X-RateLimit-Reset (whole seconds) minus now, plus up to 0.5 s of jitter.
    assert to_reset - 1.5 <= wait <= to_reset + 1.5


def test_429_with_retry_after_header(coldsend_sandbox: ColdSendControl, fresh_minute: None) -> None:
    coldsend_sandbox.set_limits(per_minute=2, retry_after_header=True)
    key = coldsend_sandbox.new_key(["*"])
    skipper = WindowSkipper(coldsend_sandbox)
    with ColdSendClient(
        key, base_url=coldsend_sandbox.base_url, pacing=False, sleep=skipper
    ) as client:
        for _ in range(3):
            client.list_inboxes()
    (wait,) = skipper.waits
    assert wait == int(wait) and 1 <= wait <= 61  # Retry-After is honoured as given


def test_pacing_keeps_a_tight_budget_free_of_429(
    coldsend_sandbox: ColdSendControl, fresh_minute: None
) -> None:
    coldsend_sandbox.set_limits(per_minute=10)
    key = coldsend_sandbox.new_key(["*"])
    skipper = WindowSkipper(coldsend_sandbox, only_full_waits=True)
    with ColdSendClient(key, base_url=coldsend_sandbox.base_url, sleep=skipper) as client:
        for _ in range(12):
            client.list_campaigns()
        to_reset = 60 - time.time() % 60
        assert client.stats.rate_limited == 0
        assert client.request_count == 12
    # With 2 requests left the client spreads them to the reset: half the time left before
    # request 9, all of the rest before request 10 (then the window is over).
    half, full = skipper.waits
    assert half == pytest.approx(to_reset / 2, abs=1.0)
    assert full == pytest.approx(to_reset, abs=1.5)


def test_exhausted_hourly_budget_is_raised_not_slept(coldsend_sandbox: ColdSendControl) -> None:
    coldsend_sandbox.set_limits(per_minute=100, per_hour=2)
    key = coldsend_sandbox.new_key(["*"])
    slept: list[float] = []
    with ColdSendClient(
        key, base_url=coldsend_sandbox.base_url, sleep=slept.append, max_retry_wait=0.01
    ) as client:
        client.list_campaigns()
        client.list_campaigns()
        with pytest.raises(RateLimitError) as caught:
            client.list_campaigns()
    to_hour = 3600 - time.time() % 3600
    assert caught.value.retry_after is not None
    assert abs(caught.value.retry_after - to_hour) < 2
    assert slept == []


def test_injected_5xx_and_dropped_connections_are_retried(
    coldsend_sandbox: ColdSendControl,
) -> None:
    with ColdSendClient(
        coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url, sleep=lambda s: None
    ) as client:
        cid = client.create_campaign(name="Flaky network campaign").campaign_id
        coldsend_sandbox.set_faults(error_rate=0.25, drop_rate=0.15, seed=3)
        for _ in range(20):
            assert client.get_campaign(cid).campaign_id == cid
        leads = (Lead(email=f"f{i}@example.com") for i in range(3_000))
        results = list(
            upload_leads(client, cid, leads, max_rows=1_000, poll_initial=0.05, poll_max=0.2)
        )
        coldsend_sandbox.set_faults()
        assert sum(r.success + r.duplicate for r in results) == 3_000
        assert client.list_leads(cid, limit=1).pagination.total == 3_000  # nothing lost or doubled
        assert client.stats.retries > 5
        assert client.request_count > 20 + 3 + 3 + client.stats.retries - 1


def test_persistent_5xx_ends_in_internal_server_error(coldsend_sandbox: ColdSendControl) -> None:
    coldsend_sandbox.set_faults(error_rate=1.0, error_statuses=[503])
    with (
        ColdSendClient(
            coldsend_sandbox.admin_key,
            base_url=coldsend_sandbox.base_url,
            max_retries=2,
            sleep=lambda s: None,
        ) as client,
        pytest.raises(InternalServerError, match="503") as caught,
    ):
        client.list_campaigns()
    assert caught.value.status_code == 503
    assert coldsend_sandbox.admin_key not in str(caught.value)


def test_dropped_connections_end_in_connection_error(coldsend_sandbox: ColdSendControl) -> None:
    coldsend_sandbox.set_faults(drop_rate=1.0)
    with (
        ColdSendClient(
            coldsend_sandbox.admin_key,
            base_url=coldsend_sandbox.base_url,
            max_retries=1,
            sleep=lambda s: None,
        ) as client,
        pytest.raises(APIConnectionError, match="after 2 attempts"),
    ):
        client.list_campaigns()


def test_slow_server_ends_in_timeout_error(coldsend_sandbox: ColdSendControl) -> None:
    coldsend_sandbox.set_faults(latency_ms=400)
    with (
        ColdSendClient(
            coldsend_sandbox.admin_key,
            base_url=coldsend_sandbox.base_url,
            timeout=0.1,
            max_retries=0,
        ) as client,
        pytest.raises(APITimeoutError),
    ):
        client.list_campaigns()


def test_a_closed_port_fails_within_seconds_and_says_so() -> None:
    # A refused connection is a wrong URL or a stopped server far more often than a blip: two
    # short retries, then a clear error (before: 6 attempts and up to 15 s of backoff).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    with (
        ColdSendClient(
            "cs_live_closed-port",
            base_url=f"http://127.0.0.1:{port}/api/public/v1",
            sleep=waits.append,
        ) as client,
        pytest.raises(APIConnectionError, match="after 3 attempts: ConnectError") as caught,
    ):
        client.list_campaigns()
    assert client.request_count == 3 and len(waits) == 2
    assert sum(waits) <= 1.5  # full jitter under ceilings of 0.5 s and 1 s
    assert client_retried(caught.value)  # so no Prefect task retry repeats it
