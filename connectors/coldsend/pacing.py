"""Client-side pacing: spread the last requests of a rate-limit window so no request gets a 429.

ColdSend allows 100 requests a minute and 1,000 an hour per key and counts rejected requests
too, so running into the limit wastes budget and then waits anyway. Every response carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``; `Pacer` remembers
the latest values and, before each request, sleeps as long as `pacing_delay` says.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connectors.retry import header_reset_wait

__all__ = ["Pacer", "RateLimitState", "pacing_delay", "parse_rate_limit"]


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The rate-limit headers of one response; `reset` is a Unix time."""

    limit: int
    remaining: int
    reset: float


def parse_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimitState | None:
    """The rate-limit state in `headers`, or None when any of the three headers is absent or bad."""
    limit = headers.get("x-ratelimit-limit")
    remaining = headers.get("x-ratelimit-remaining")
    wait = header_reset_wait(headers, now=now)
    if limit is None or remaining is None or wait is None:
        return None
    try:
        return RateLimitState(int(float(limit)), int(float(remaining)), now + wait)
    except ValueError:
        return None


def pacing_delay(
    state: RateLimitState | None,
    *,
    now: float,
    low_water: float = 0.2,
    margin: float = 0.25,
) -> float:
    """Seconds to sleep before the next request.

    Requests go out unpaced while more than `low_water` of the window's budget is left. Below
    that, the remaining requests are spread evenly over the time left until the reset, so the
    last one lands at the reset instead of a burst hitting 429 a minute early. With nothing
    left, wait for the reset plus `margin` (the reset is whole seconds and clocks differ).

    Args:
        state: The last rate-limit headers seen, None when none were.
        now: Current Unix time.
        low_water: Share of ``limit`` below which pacing starts.
        margin: Extra seconds after a reset before the first request of the next window.
    """
    if state is None or state.limit <= 0:
        return 0.0
    time_left = state.reset - now
    if time_left <= 0:
        return 0.0
    if state.remaining <= 0:
        return time_left + margin
    if state.remaining > max(1, math.ceil(state.limit * low_water)):
        return 0.0
    return time_left / state.remaining


class Pacer:
    """Remembers the latest rate-limit headers and sleeps before requests as `pacing_delay` says.

    Args:
        clock: Returns the current Unix time.
        sleep: Sleeps the given seconds (injectable for tests).
        max_wait: Longest single sleep; a longer wait (an exhausted hourly budget) is left to
            the server's 429 and the retry policy, which can refuse to wait that long.
        enabled: When False, `before_request` never sleeps.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait: float = 120.0,
        enabled: bool = True,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self.enabled = enabled
        self.state: RateLimitState | None = None
        self.slept = 0.0
        self._lock = threading.Lock()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the rate-limit headers of a response (ignored when absent)."""
        state = parse_rate_limit(headers, now=self._clock())
        if state is not None:
            with self._lock:
                self.state = state

    def before_request(self) -> float:
        """Sleep as long as the budget requires; returns the seconds slept."""
        if not self.enabled:
            return 0.0
        with self._lock:
            state = self.state
        delay = pacing_delay(state, now=self._clock())
        if delay <= 0 or delay > self.max_wait:
            return 0.0
        self._sleep(delay)
        with self._lock:
            self.slept += delay
            # The window we waited for is over; the next response brings the new budget.
            if state is not None and state.remaining <= 0:
                self.state = None
        return delay
