"""The retry decision and the retry wait, as tables (contract section 2, design principle 7)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from connectors.coldsend.retry import retry_delay, should_retry

NOW = 1_800_000_000.0
REQ = httpx.Request("GET", "https://x.test/")


class _TopRng(random.Random):
    """Always draws the top of the range, to check ceilings exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


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
        (None, httpx.ConnectError("refused", request=REQ), "GET", 5, None, False),
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
    assert (
        should_retry(
            status=status,
            error=error,
            method=method,
            attempt=attempt,
            max_retries=5,
            replay_safe=replay_safe,
        )
        is expected
    )


def test_zero_max_retries_never_retries() -> None:
    assert not should_retry(status=503, error=None, method="GET", attempt=0, max_retries=0)


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
    got = retry_delay(
        attempt=attempt, headers=httpx.Headers(headers), now=NOW, rng=_TopRng(), status=status
    )
    assert got == pytest.approx(expected)


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    rng = random.Random(1)
    draws = [retry_delay(attempt=3, headers={}, now=NOW, rng=rng) for _ in range(2000)]
    assert min(draws) >= 0.0
    assert max(draws) <= 4.0
    # Full jitter spreads over the whole range rather than clustering at the ceiling.
    assert min(draws) < 0.2
    assert max(draws) > 3.8
