"""Client-side pacing for HubSpot's rolling rate-limit windows, so a long sync never meets a 429.

HubSpot counts requests per account in a rolling window: 100 or 190 per 10 seconds by plan
(`HubSpotLimits.per_ten_seconds`), and separately 5 searches a second. `RollingWindow` keeps
the times of the last requests and, before the next one, waits until the window has room.

A request's arrival at HubSpot lies somewhere between when it was sent and when its answer
came back, so a window slot is recorded at the answer's time: the server can then never have
seen more than `limit` requests in any window, whatever the latency, at the cost of one
round trip per window of throughput.

Other apps may spend the same account's budget. Responses carry
``X-HubSpot-RateLimit-Remaining`` (and ``-Max``, ``-Interval-Milliseconds``); `observe`
lowers the room the window believes it has to what HubSpot reports.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["HubSpotLimits", "RollingWindow"]


@dataclass(frozen=True, slots=True)
class HubSpotLimits:
    """The account's limits, as the HubSpot plan sets them.

    Attributes:
        per_ten_seconds: Requests per rolling 10 seconds: 100 (Free, Starter) or 190
            (Professional, Enterprise, or the API limit increase).
        searches_per_second: CRM search requests per second (5 on every plan).
        margin_seconds: Extra wait added to each window, for clock granularity.
    """

    per_ten_seconds: int = 100
    searches_per_second: int = 5
    margin_seconds: float = 0.02

    def __post_init__(self) -> None:
        if self.per_ten_seconds < 1 or self.searches_per_second < 1:
            raise ValueError("HubSpot limits must allow at least one request")


class RollingWindow:
    """At most `limit` requests in any `window` seconds, counted at answer time.

    Args:
        limit: Requests allowed per window.
        window: Window length in seconds.
        clock: Monotonic time in seconds.
        sleep: Sleeps the given seconds (injectable for tests).
        margin: Seconds added to the window before a slot is free again.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        margin: float = 0.02,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rolling window needs limit >= 1 and window > 0")
        self.limit = limit
        self.configured_limit = limit
        self.window = window
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._done: deque[float] = deque()
        self._inflight = 0
        self._lock = threading.Lock()
        self.slept = 0.0

    def _trim(self, now: float) -> None:
        horizon = now - self.window - self.margin
        done = self._done
        while done and done[0] <= horizon:
            done.popleft()

    def acquire(self) -> float:
        """Wait until one more request fits in the window, and take its slot; seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._trim(now)
                if len(self._done) + self._inflight < self.limit:
                    self._inflight += 1
                    self.slept += slept
                    return slept
                wait = (
                    self._done[0] + self.window + self.margin - now
                    if self._done
                    else self.window / self.limit
                )
            wait = max(wait, 0.001)
            self._sleep(wait)
            slept += wait

    def release(self) -> None:
        """The request whose slot was taken got its answer (or failed): stamp its slot."""
        with self._lock:
            self._inflight = max(0, self._inflight - 1)
            self._done.append(self._clock())

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt HubSpot's own view of the window from a response's rate-limit headers."""
        maximum = _int(headers.get("x-hubspot-ratelimit-max"))
        remaining = _int(headers.get("x-hubspot-ratelimit-remaining"))
        interval = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        with self._lock:
            if maximum is not None and maximum > 0:
                self.limit = min(self.configured_limit, maximum)
            if interval is not None and interval > 0:
                self.window = interval / 1000
            if remaining is None:
                return
            now = self._clock()
            self._trim(now)
            free = self.limit - len(self._done) - self._inflight
            # Others spent part of the account's window: count their requests as ours.
            for _ in range(max(0, free - remaining)):
                self._done.append(now)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
