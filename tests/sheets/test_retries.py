"""Bounded retries, backoff and pacing: pure decisions, then 429 and 5xx from the emulator."""

from __future__ import annotations

import random
from dataclasses import replace

import gspread
import pytest
from gspread.http_client import BackOffHTTPClient
from requests.structures import CaseInsensitiveDict

from connectors.leads import LeadStatus, StatusUpdate
from connectors.retry import Failure, retry_delay, should_retry
from connectors.sheets import (
    SHEETS_RETRY_POLICY,
    RequestPacer,
    SheetsConnection,
    SheetsLeadSource,
    SheetsRateLimitError,
    SheetsServerError,
    SheetsStatusSink,
)
from sandbox.sheets.fixtures import SheetsSandbox

from ._helpers import Sleeps


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (429, True),
        (500, True),
        (503, True),
        (408, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
    ],
)
def test_sheets_policy_retries_what_google_asks_to(status: int, retry: bool) -> None:
    failure = Failure(status=status)
    assert should_retry(SHEETS_RETRY_POLICY, failure, retries=0, replay_safe=True) is retry


@pytest.mark.parametrize(
    ("retries", "headers", "expected"),
    [
        (0, {}, 1.0),
        (1, {}, 2.0),
        (2, {}, 4.0),
        (8, {}, 32.0),  # capped
        (0, {"Retry-After": "7"}, 7.0),  # Retry-After honoured
        (0, {"Retry-After": "90"}, 90.0),  # in full: waking early only meets the next 429
    ],
)
def test_sheets_backoff(retries: int, headers: dict[str, str], expected: float) -> None:
    failure = Failure(status=429, headers=CaseInsensitiveDict(headers))
    got = retry_delay(SHEETS_RETRY_POLICY, failure, retries=retries, now=0.0, rng=_TopRng())
    assert got == pytest.approx(expected)


class _TopRng(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_pacer_keeps_every_window_within_the_limit() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    pacer = RequestPacer(3, 60.0, clock=lambda: now[0], sleep=sleep)
    times = []
    for _ in range(7):
        pacer.acquire()
        times.append(now[0])
        now[0] += 1.0
    assert times == [0.0, 1.0, 2.0, 60.0, 61.0, 62.0, 120.0]
    for i, t in enumerate(times):
        assert sum(1 for u in times if t <= u < t + 60.0) <= 3, i


def test_backoff_http_client_is_refused(conn: SheetsConnection) -> None:
    client = gspread.Client(
        auth=None,
        session=conn.client().http_client.session,  # type: ignore[arg-type]
        http_client=BackOffHTTPClient,
    )
    with pytest.raises(ValueError, match="without limit"):
        SheetsLeadSource(client, spreadsheet_id="x")


def _sink(
    conn: SheetsConnection, sid: str, sleeps: Sleeps, max_retries: int = 5
) -> SheetsStatusSink:
    return SheetsStatusSink(
        conn.client(),
        spreadsheet_id=sid,
        worksheet="Leads",
        retry=replace(SHEETS_RETRY_POLICY, max_retries=max_retries),
        sleep=sleeps,
        rng=random.Random(1),
    )


def test_quota_exhausted_then_recovered(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"], ["a@example.com"]]})
    sheets_sandbox.set_limits(reads_per_minute=60, writes_per_minute=0)

    class LiftAfterTwo(Sleeps):
        def __call__(self, seconds: float) -> None:
            super().__call__(seconds)
            if len(self.calls) == 2:  # the quota window "rolls over" during the second wait
                sheets_sandbox.set_limits(reads_per_minute=60, writes_per_minute=60)

    sleeps = LiftAfterTwo()
    result = _sink(conn, sid, sleeps).write_statuses(
        [StatusUpdate("a@example.com", LeadStatus.SENT)]
    )
    assert result.written == 1
    assert result.requests == 1 + 3  # one read, two refused writes, one accepted write
    assert len(sleeps.calls) == 2 and sleeps.calls[1] > sleeps.calls[0]
    assert sheets_sandbox.values(sid, "Leads")[1][1] == "SENT"


def test_quota_never_recovering_is_a_clear_error_after_bounded_tries(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection, sleeps: Sleeps
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"], ["a@example.com"]]})
    sheets_sandbox.set_limits(reads_per_minute=60, writes_per_minute=0)
    with pytest.raises(SheetsRateLimitError) as info:
        _sink(conn, sid, sleeps, max_retries=4).write_statuses(
            [StatusUpdate("a@example.com", LeadStatus.SENT)]
        )
    err = info.value
    assert err.status == 429 and err.google_status == "RESOURCE_EXHAUSTED"
    assert err.attempts == 5
    assert "values.batchUpdate" in str(err) and "after 5 attempts" in str(err)
    assert len(sleeps.calls) == 4
    assert sheets_sandbox.stats()["POST /v4/spreadsheets/{id}/values:batchUpdate"] == 5


def test_reads_are_per_user(sheets_sandbox: SheetsSandbox) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"], ["a@example.com"]]})
    sheets_sandbox.set_limits(reads_per_minute=2, writes_per_minute=60)
    alice = SheetsConnection(api_base_url=sheets_sandbox.url, access_token="alice")
    bob = SheetsConnection(api_base_url=sheets_sandbox.url, access_token="bob")
    no_retry = replace(SHEETS_RETRY_POLICY, max_retries=0)
    assert (
        len(list(SheetsLeadSource(alice.client(), spreadsheet_id=sid, retry=no_retry).read())) == 1
    )
    with pytest.raises(SheetsRateLimitError):
        list(SheetsLeadSource(alice.client(), spreadsheet_id=sid, retry=no_retry).read())
    assert len(list(SheetsLeadSource(bob.client(), spreadsheet_id=sid, retry=no_retry).read())) == 1


def test_server_errors_are_retried_then_reported(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection, sleeps: Sleeps
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"], ["a@example.com"]]})
    sheets_sandbox.set_faults(error_rate=1.0, error_statuses=[503])
    source = SheetsLeadSource(
        conn.client(),
        spreadsheet_id=sid,
        retry=replace(SHEETS_RETRY_POLICY, max_retries=2),
        sleep=sleeps,
    )
    with pytest.raises(SheetsServerError, match="after 3 attempts: HTTP 503"):
        list(source.read())
    assert source.requests == 3
    sheets_sandbox.set_faults(error_rate=0.5, error_statuses=[500], seed=3)
    source = SheetsLeadSource(
        conn.client(),
        spreadsheet_id=sid,
        retry=replace(SHEETS_RETRY_POLICY, max_retries=8),
        sleep=sleeps,
    )
    assert [lead.email for lead in source.read()] == ["a@example.com"]
