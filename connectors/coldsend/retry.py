"""When the ColdSend client retries a request and how long it waits: two pure functions.

The client's request loop calls `should_retry` and then `retry_delay`; both are free of I/O so
they are tested with plain tables.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Mapping

import httpx

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "header_reset_wait",
    "header_retry_after",
    "retry_delay",
    "should_retry",
]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses worth another try (contract section 2); every other error status is final."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose repetition has the effect of a single call (RFC 9110 section 9.2.2)."""

# The request provably never reached the server: safe to send again whatever it does.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request was (maybe partly) sent and the answer was lost: it may have taken effect.
_MAYBE_SENT = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)


def should_retry(
    *,
    status: int | None,
    error: Exception | None,
    method: str,
    attempt: int,
    max_retries: int,
    replay_safe: bool | None = None,
) -> bool:
    """Whether to send a failed request again.

    Args:
        status: The response status, None when no response arrived.
        error: The transport exception when no response arrived.
        method: The HTTP method.
        attempt: Retries already made for this request (0 after the first try).
        max_retries: Retries allowed in all.
        replay_safe: Whether sending the request twice has the effect of sending it once.
            None decides by method (GET, HEAD, OPTIONS, PUT, DELETE are; POST is not).

    Returns:
        True for a 429 (the rate limiter refused the request before any processing) and for
        connect failures (nothing was sent), whatever the request. For 500, 502, 503 and 504
        answers and for broken or timed-out exchanges only when the request is replay safe:
        the server may have acted on it. Never for 400/401/403/404/409/422, nor once
        `max_retries` retries have been made.
    """
    if attempt >= max_retries:
        return False
    safe = replay_safe if replay_safe is not None else method.upper() in IDEMPOTENT_METHODS
    if status is not None:
        return status == 429 or (status in RETRYABLE_STATUSES and safe)
    if error is None:
        return False
    if isinstance(error, _NOT_SENT):
        return True
    if isinstance(error, _MAYBE_SENT):
        return safe
    # UnsupportedProtocol, LocalProtocolError, ProxyError, DecodingError...: a retry would fail
    # the same way.
    return False


def retry_delay(
    *,
    attempt: int,
    headers: Mapping[str, str],
    now: float,
    rng: random.Random,
    base: float = 0.5,
    cap: float = 60.0,
    status: int | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    Args:
        attempt: Retries already made (0 before the first retry).
        headers: The failed response's headers (case-insensitive mapping), empty when none.
        now: Current Unix time, to read HTTP dates and ``X-RateLimit-Reset``.
        rng: Source of jitter.
        base: First backoff ceiling in seconds.
        cap: Largest backoff ceiling in seconds (server-directed waits are not capped here).
        status: The response status, None when no response arrived.

    Returns:
        ``Retry-After`` (seconds or HTTP date) when present; else, for a 429, the time until
        ``X-RateLimit-Reset`` plus up to `base` seconds of jitter (so clients sharing a key do
        not all return at the same instant); else capped exponential backoff with full
        jitter: uniform in ``[0, min(cap, base * 2**attempt)]``.
    """
    told = header_retry_after(headers, now=now)
    if told is not None:
        return told
    if status == 429:
        wait = header_reset_wait(headers, now=now)
        if wait is not None and wait > 0:
            return wait + rng.uniform(0.0, base)
    ceiling = min(cap, base * math.pow(2.0, min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


def header_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date); None when absent or bad."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def header_reset_wait(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset``; None when absent or bad.

    The contract sends Unix epoch seconds. Some services send seconds-from-now instead; such a
    small number is never a plausible epoch (it would be before 2001), so it is read as a delta.
    """
    value = headers.get("x-ratelimit-reset")
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    wait = reset if reset < 1_000_000_000 else reset - now
    return max(0.0, wait)
