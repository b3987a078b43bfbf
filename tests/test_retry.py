"""The one retry layer (connectors/retry.py): the decision and the wait as tables, and the loop.

Design principle 7 and contract section 2. Each connector's own configuration and classifier
is tested beside it; here the shared functions are.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
import requests
import urllib3

from connectors._http import requests_failure
from connectors.coldsend.client import _classify
from connectors.retry import (
    Failure,
    Retrying,
    RetryPolicy,
    Transport,
    client_retried,
    retry_delay,
    should_retry,
)

NOW = 1_800_000_000.0
REQ = httpx.Request("GET", "https://x.test/")
COLDSEND = RetryPolicy()
IDEMPOTENT = {"GET", "PUT", "DELETE"}


class _TopRng(random.Random):
    """Always draws the top of the range, to check ceilings exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _failure(status: int | None, error: Exception | None) -> Failure:
    if status is not None:
        return Failure(status=status)
    if error is None:
        return Failure()
    failure = _classify(error)
    return failure if failure is not None else Failure()


@pytest.mark.parametrize(
    ("status", "error", "method", "attempt", "replay_safe", "expected"),
    [
        (429, None, "POST", 0, None, True),
        (500, None, "GET", 0, None, True),
        (502, None, "PUT", 2, None, True),
        (503, None, "DELETE", 4, None, True),
        (504, None, "POST", 0, True, True),
        (429, None, "POST", 0, False, True),  # refused before processing: always safe
        (500, None, "POST", 0, None, False),  # the server may have acted on it
        (503, None, "POST", 0, False, False),
        (503, None, "POST", 0, True, True),
        (502, None, "PUT", 0, False, False),
        (400, None, "GET", 0, None, False),
        (401, None, "GET", 0, None, False),
        (403, None, "GET", 0, None, False),
        (404, None, "GET", 0, None, False),
        (409, None, "POST", 0, None, False),
        (422, None, "POST", 0, None, False),
        (501, None, "GET", 0, None, False),
        (429, None, "GET", 5, None, False),  # budget spent
        (None, httpx.ConnectError("refused", request=REQ), "POST", 0, False, True),
        (None, httpx.ConnectTimeout("slow", request=REQ), "POST", 0, None, True),
        (None, httpx.PoolTimeout("busy", request=REQ), "POST", 0, None, True),
        (None, httpx.ReadError("reset", request=REQ), "GET", 0, None, True),
        (None, httpx.ReadTimeout("slow", request=REQ), "PUT", 0, None, True),
        (None, httpx.RemoteProtocolError("eof", request=REQ), "DELETE", 0, None, True),
        (None, httpx.ReadError("reset", request=REQ), "POST", 0, None, False),
        (None, httpx.ReadError("reset", request=REQ), "POST", 0, True, True),
        (None, httpx.WriteError("pipe", request=REQ), "POST", 0, False, False),
        (None, httpx.RemoteProtocolError("eof", request=REQ), "PUT", 0, False, False),
        (None, httpx.ConnectError("refused", request=REQ), "GET", 2, None, False),
        (None, httpx.UnsupportedProtocol("ftp", request=REQ), "GET", 0, None, False),
        (None, ValueError("not a transport error"), "GET", 0, None, False),
        (None, None, "GET", 0, None, False),
    ],
)
def test_should_retry(
    status: int | None,
    error: Exception | None,
    method: str,
    attempt: int,
    replay_safe: bool | None,
    expected: bool,
) -> None:
    safe = method in IDEMPOTENT if replay_safe is None else replay_safe
    got = should_retry(COLDSEND, _failure(status, error), retries=attempt, replay_safe=safe)
    assert got is expected


@pytest.mark.parametrize(
    ("retries", "expected"),
    [(0, True), (1, True), (2, False), (5, False)],
)
def test_a_refused_connection_is_retried_twice_at_most(retries: int, expected: bool) -> None:
    refused = Failure(transport=Transport.CONNECT)
    assert should_retry(COLDSEND, refused, retries=retries, replay_safe=False) is expected


def test_zero_max_retries_never_retries() -> None:
    policy = RetryPolicy(max_retries=0)
    assert not should_retry(policy, Failure(status=503), retries=0, replay_safe=True)
    assert not should_retry(
        policy, Failure(transport=Transport.CONNECT), retries=0, replay_safe=True
    )


def test_a_policy_names_its_own_statuses() -> None:
    sheets = RetryPolicy(statuses=frozenset({408, 429, 500, 502, 503, 504}))
    assert should_retry(sheets, Failure(status=408), retries=0, replay_safe=True)
    assert not should_retry(COLDSEND, Failure(status=408), retries=0, replay_safe=True)


_HTTP_DATE_IN_30S = format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)
_HTTP_DATE_PAST = format_datetime(datetime.fromtimestamp(NOW - 30, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("attempt", "headers", "status", "expected"),
    [
        # Retry-After wins, whatever the status.
        (0, {"retry-after": "7"}, 429, 7.0),
        (3, {"retry-after": "2.5", "x-ratelimit-reset": str(int(NOW + 40))}, 503, 2.5),
        (0, {"retry-after": _HTTP_DATE_IN_30S}, 429, 30.0),
        (0, {"retry-after": _HTTP_DATE_PAST}, 503, 0.0),
        # A 429 without Retry-After waits for the reset, plus up to `base` of jitter.
        (0, {"x-ratelimit-reset": str(int(NOW + 12))}, 429, 12.5),
        (0, {"retry-after": "soon", "x-ratelimit-reset": str(int(NOW + 12))}, 429, 12.5),
        (0, {"x-ratelimit-reset": "20"}, 429, 20.5),  # seconds-from-now style
        # ... but the reset is not a reason to wait on a 5xx: backoff instead.
        (0, {"x-ratelimit-reset": str(int(NOW + 12))}, 503, 0.5),
        # Reset already passed: plain backoff.
        (1, {"x-ratelimit-reset": str(int(NOW - 3))}, 429, 1.0),
        # Exponential ceilings, capped at 60 s.
        (0, {}, None, 0.5),
        (1, {}, 500, 1.0),
        (4, {}, 502, 8.0),
        (7, {}, 503, 60.0),
        (500, {}, 503, 60.0),
    ],
)
def test_retry_delay_ceilings(
    attempt: int, headers: dict[str, str], status: int | None, expected: float
) -> None:
    failure = Failure(status=status, headers=httpx.Headers(headers))
    got = retry_delay(COLDSEND, failure, retries=attempt, now=NOW, rng=_TopRng())
    assert got == pytest.approx(expected)


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    rng = random.Random(1)
    draws = [retry_delay(COLDSEND, Failure(), retries=3, now=NOW, rng=rng) for _ in range(2000)]
    assert min(draws) >= 0.0
    assert max(draws) <= 4.0
    # Full jitter spreads over the whole range rather than clustering at the ceiling.
    assert min(draws) < 0.2
    assert max(draws) > 3.8


class _Flaky:
    """Fails with the given exceptions in turn, then answers "done"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class _Answer(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or {}


def _classify_answer(exc: Exception) -> Failure | None:
    if isinstance(exc, _Answer):
        return Failure(status=exc.status, headers=exc.headers)
    if isinstance(exc, ConnectionRefusedError):
        return Failure(transport=Transport.CONNECT)
    return None


def test_the_loop_retries_then_returns_and_reports_each_wait() -> None:
    sleeps: list[float] = []
    told: list[tuple[int | None, int, float]] = []
    flaky = _Flaky(_Answer(503), _Answer(429, {"retry-after": "3"}))
    retrying = Retrying(COLDSEND, sleep=sleeps.append, clock=lambda: NOW, rng=_TopRng())
    got = retrying.run(
        flaky,
        classify=_classify_answer,
        replay_safe=True,
        on_retry=lambda f, n, d: told.append((f.status, n, d)),
    )
    assert got == "done" and flaky.calls == 3
    assert sleeps == [0.5, 3.0]
    assert told == [(503, 1, 0.5), (429, 2, 3.0)]


def test_the_loop_gives_up_after_the_budget_and_marks_the_failure_as_retried() -> None:
    sleeps: list[float] = []
    flaky = _Flaky(*[_Answer(500) for _ in range(10)])
    retrying = Retrying(RetryPolicy(max_retries=3), sleep=sleeps.append, rng=_TopRng())
    with pytest.raises(RuntimeError, match="gave up after 4") as caught:
        retrying.run(
            flaky,
            classify=_classify_answer,
            replay_safe=True,
            give_up=lambda exc, f, attempts: RuntimeError(f"gave up after {attempts}"),
        )
    assert flaky.calls == 4 and sleeps == [0.5, 1.0, 2.0]
    assert client_retried(caught.value)
    assert caught.value.__cause__ is None  # give_up chose no cause: nothing of the request shown


def test_the_loop_never_resends_what_is_unsafe_and_leaves_it_for_the_caller() -> None:
    flaky = _Flaky(_Answer(500))
    with pytest.raises(_Answer) as caught:
        Retrying(COLDSEND, sleep=pytest.fail).run(
            flaky, classify=_classify_answer, replay_safe=False
        )
    assert flaky.calls == 1
    assert not client_retried(caught.value)  # the retry layer did not own it: not transient


def test_the_loop_refuses_a_wait_longer_than_the_policy_allows() -> None:
    flaky = _Flaky(_Answer(429, {"retry-after": "3600"}))
    with pytest.raises(_Answer) as caught:
        Retrying(COLDSEND, sleep=pytest.fail).run(
            flaky, classify=_classify_answer, replay_safe=True
        )
    assert flaky.calls == 1
    assert client_retried(caught.value)  # a task retry in seconds would meet the same 429


def test_the_loop_lets_other_exceptions_through_untouched() -> None:
    flaky = _Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        Retrying(COLDSEND, sleep=pytest.fail).run(
            flaky, classify=_classify_answer, replay_safe=True
        )
    assert flaky.calls == 1


def test_a_refused_connection_fails_after_three_attempts() -> None:
    sleeps: list[float] = []
    flaky = _Flaky(*[ConnectionRefusedError() for _ in range(10)])
    with pytest.raises(ConnectionRefusedError) as caught:
        Retrying(COLDSEND, sleep=sleeps.append, rng=_TopRng()).run(
            flaky, classify=_classify_answer, replay_safe=False
        )
    assert flaky.calls == 3 and sleeps == [0.5, 1.0]
    assert client_retried(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"connect_retries": -1}, {"base_delay": -0.1}, {"max_wait": -1.0}],
)
def test_a_policy_refuses_negative_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def _refused() -> requests.ConnectionError:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", 9)
    cause = urllib3.exceptions.NewConnectionError(pool, "refused")  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/", reason=cause))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_refused(), Transport.CONNECT),
        (requests.ConnectTimeout("slow connect"), Transport.CONNECT),
        (requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted")), Transport.LOST),
        (requests.ReadTimeout("slow answer"), Transport.LOST),
        (requests.exceptions.ChunkedEncodingError("cut"), Transport.LOST),
        (ValueError("not a transport failure"), None),
    ],
    ids=lambda v: type(v).__name__,
)
def test_requests_failures_for_the_requests_based_connectors(
    exc: Exception, expected: Transport | None
) -> None:
    failure = requests_failure(exc)
    assert (failure.transport if failure else None) is expected
