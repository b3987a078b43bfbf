"""The one retry layer of every connector: which failures to retry, how long to wait, the loop.

Design principle 7: a request is retried in exactly one place, bounded, honouring the server.
ColdSend (httpx), Google Sheets (gspread on requests) and Salesforce (simple-salesforce on
requests) each describe a failed attempt as a `Failure` and configure a `RetryPolicy`; the
decision (`should_retry`), the wait (`retry_delay`) and the loop (`Retrying.run`) are the same
for all three. The decision and the wait are pure functions, tested with tables; the loop takes
an injectable sleep, clock and random source.

No library holds the loop: tenacity and stamina decide on exception types, but the decision
here needs the status, the headers and whether the request may be sent twice, and urllib3's
`Retry` would cover the requests-based clients only (and retries inside gspread's and
simple-salesforce's error handling, out of sight of our error types). The loop is 30 lines.

A failure this layer judged transient carries ``retry_attempts`` once it is raised (see
`client_retried`): orchestration (Prefect task retries) must not retry it a second time.
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "Failure",
    "RetryPolicy",
    "Retrying",
    "Transport",
    "client_retried",
    "header_reset_wait",
    "header_retry_after",
    "is_transient",
    "mark_retried",
    "retry_delay",
    "should_retry",
]

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

_EMPTY: Mapping[str, str] = {}


class Transport(enum.Enum):
    """How an exchange broke when no answer arrived."""

    CONNECT = "connect"
    """Nothing reached the server (refused, unresolvable, connect or pool timeout): any request
    may be sent again."""
    LOST = "lost"
    """The request was (perhaps partly) sent and the answer lost (reset, read timeout, broken
    framing): the server may have acted on it."""
    FATAL = "fatal"
    """A retry would fail the same way (unsupported scheme, bad proxy, local protocol error)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt, as the retry layer sees it.

    Attributes:
        status: The error response's status; None when no answer arrived.
        headers: The error response's headers (a case-insensitive mapping), empty when none.
        transport: How the exchange broke when no answer arrived.
    """

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    transport: Transport | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one connector retries: which answers, how often, how long.

    Attributes:
        max_retries: Retries after the first attempt (0 = never retry).
        connect_retries: Retries while the failure is that nothing could be reached. Small on
            purpose: a refused connection is almost always a wrong URL or a stopped server, so
            the user hears of it within seconds instead of after the full backoff.
        statuses: Error statuses worth another try; every other error status is final.
        always_safe_statuses: Statuses that prove the server did nothing with the request (a
            429 is refused before any processing), so they are retried even when the request
            is not safe to send twice.
        base_delay: Backoff ceiling before the first retry, in seconds; doubled for each next.
        max_backoff: Cap on a backoff ceiling (server-directed waits are not capped by it).
        max_wait: Longest single wait accepted, server-directed or not. When the server asks
            for longer (an exhausted hourly budget), the failure is raised instead of sleeping.
        reset_header: Whether a 429 without ``Retry-After`` waits for ``X-RateLimit-Reset``.
    """

    max_retries: int = 5
    connect_retries: int = 2
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    always_safe_statuses: frozenset[int] = frozenset({429})
    base_delay: float = 0.5
    max_backoff: float = 60.0
    max_wait: float = 120.0
    reset_header: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if not isinstance(self.connect_retries, int) or self.connect_retries < 0:
            raise ValueError(
                f"connect_retries must be an integer >= 0, got {self.connect_retries!r}"
            )
        if min(self.base_delay, self.max_backoff, self.max_wait) < 0:
            raise ValueError("RetryPolicy delays must not be negative")


def is_transient(policy: RetryPolicy, failure: Failure, *, replay_safe: bool) -> bool:
    """Whether `failure` is worth another try at all (the retry budget aside).

    Args:
        replay_safe: Whether sending the request twice has the effect of sending it once.

    Returns:
        For an answer: its status is in `policy.statuses` and either the request is replay
        safe or the status is one of `always_safe_statuses`. For no answer: a connect failure
        always; a lost answer only when the request is replay safe; never a fatal one.
    """
    if failure.status is not None:
        return failure.status in policy.statuses and (
            replay_safe or failure.status in policy.always_safe_statuses
        )
    if failure.transport is Transport.CONNECT:
        return True
    return failure.transport is Transport.LOST and replay_safe


def should_retry(policy: RetryPolicy, failure: Failure, *, retries: int, replay_safe: bool) -> bool:
    """Whether to send the request again after `retries` retries already made.

    A transient failure (see `is_transient`) is retried while fewer than `max_retries`
    retries were made; a connect failure while fewer than `min(max_retries, connect_retries)`.
    """
    if not is_transient(policy, failure, replay_safe=replay_safe):
        return False
    budget = policy.max_retries
    if failure.status is None and failure.transport is Transport.CONNECT:
        budget = min(budget, policy.connect_retries)
    return retries < budget


def retry_delay(
    policy: RetryPolicy, failure: Failure, *, retries: int, now: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``retries + 1``.

    Args:
        retries: Retries already made (0 before the first retry).
        now: Current Unix time, to read HTTP dates and ``X-RateLimit-Reset``.
        rng: Source of jitter.

    Returns:
        ``Retry-After`` (seconds or HTTP date) when present; else, for a 429 and a policy that
        reads it, the time until ``X-RateLimit-Reset`` plus up to `base_delay` of jitter (so
        clients sharing a key do not all return at the same instant); else capped exponential
        backoff with full jitter: uniform in ``[0, min(max_backoff, base_delay * 2**retries)]``.
    """
    told = header_retry_after(failure.headers, now=now)
    if told is not None:
        return told
    if failure.status == 429 and policy.reset_header:
        wait = header_reset_wait(failure.headers, now=now)
        if wait is not None and wait > 0:
            return wait + rng.uniform(0.0, policy.base_delay)
    ceiling = min(policy.max_backoff, policy.base_delay * math.pow(2.0, min(retries, 62)))
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

    The ColdSend contract sends Unix epoch seconds. Some services send seconds-from-now
    instead; such a small number is never a plausible epoch (it would be before 2001), so it
    is read as a delta.
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


def mark_retried(exc: E, attempts: int) -> E:
    """Mark `exc` as a transient failure its connector's retry layer owned (`attempts` made).

    For a connector that runs its own loop on the shared policy (HubSpot's, which interleaves
    its rate-limit windows); `Retrying.run` marks what it raises itself.
    """
    exc.retry_attempts = attempts  # type: ignore[attr-defined]
    return exc


def client_retried(exc: BaseException) -> bool:
    """Whether `exc` is a failure a connector's retry layer judged transient and already retried.

    True also when its budget was 0 or the server asked for a longer wait than the policy
    accepts: either way, trying again at once is what the policy chose not to do.
    """
    return isinstance(getattr(exc, "retry_attempts", None), int)


class Retrying:
    """Runs one request under a `RetryPolicy`, sleeping between attempts.

    Args:
        policy: The connector's policy.
        sleep: Called with each wait in seconds (tests inject a recorder).
        clock: Current Unix time, for HTTP dates and reset headers.
        rng: Source of jitter; a private `random.Random` when None (never the global one).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    def run(
        self,
        attempt: Callable[[], T],
        *,
        classify: Callable[[Exception], Failure | None],
        replay_safe: bool,
        give_up: Callable[[Exception, Failure, int], BaseException] | None = None,
        on_retry: Callable[[Failure, int, float], None] | None = None,
    ) -> T:
        """Call `attempt` until it returns, retrying the failures the policy allows.

        Args:
            attempt: Makes one request; returns its result or raises.
            classify: The `Failure` an exception stands for; None for an exception that is
                not a request failure at all (it propagates untouched).
            replay_safe: Whether the request may be sent twice.
            give_up: Builds the exception to raise from (the last exception, its failure, the
                attempts made); the last exception itself when None.
            on_retry: Told (failure, retry number from 1, wait) before each wait.

        Raises:
            The exception `give_up` builds, or the attempt's own. When the failure was
            transient it carries ``retry_attempts`` (see `client_retried`).
        """
        retries = 0
        while True:
            try:
                return attempt()
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise
                delay = self._next_wait(failure, retries, replay_safe)
                if delay is None:
                    final = give_up(exc, failure, retries + 1) if give_up else exc
                    if is_transient(self.policy, failure, replay_safe=replay_safe):
                        mark_retried(final, retries + 1)
                    if final is exc:
                        raise
                    # The cause is give_up's choice: None hides a library error whose text
                    # may quote a request (and so a secret).
                    raise final from final.__cause__
            retries += 1
            if on_retry is not None:
                on_retry(failure, retries, delay)
            self.sleep(delay)

    def _next_wait(self, failure: Failure, retries: int, replay_safe: bool) -> float | None:
        """The wait before the next retry, or None to give up."""
        if not should_retry(self.policy, failure, retries=retries, replay_safe=replay_safe):
            return None
        delay = retry_delay(self.policy, failure, retries=retries, now=self.clock(), rng=self.rng)
        return delay if delay <= self.policy.max_wait else None
