"""Fixed-window rate limiting per API key (per minute and per hour), as ColdSend documents it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of counting one request, and the values for the X-RateLimit-* headers.

    `limit`, `remaining` and `reset` describe the window that binds first: the hour window once
    it has fewer requests left than the minute window, so a client waiting for `reset` never
    wakes up into another 429.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self, *, retry_after_header: bool = False) -> list[tuple[bytes, bytes]]:
        """Response headers as ASGI byte pairs."""
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]
        if retry_after_header and not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class RateLimiter:
    """Counts every request of a key (including the rejected ones) in fixed windows.

    Windows are aligned to the clock (minute and hour boundaries of Unix time), so `reset` is a
    whole second and the same for every key.
    """

    def __init__(
        self, *, per_minute: int, per_hour: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [minute window, minute count, hour window, hour count]
        self._counts: dict[str, list[int]] = {}

    def configure(self, *, per_minute: int, per_hour: int) -> None:
        """Change the limits; counts in the current windows are kept."""
        with self._lock:
            self.per_minute = per_minute
            self.per_hour = per_hour

    def clear(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    def hit(self, key: str) -> Decision:
        """Count one request of `key` and say whether it may proceed."""
        now = self._clock()
        minute, hour = int(now // 60), int(now // 3600)
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                entry = self._counts[key] = [minute, 0, hour, 0]
            if entry[0] != minute:
                entry[0], entry[1] = minute, 0
            if entry[2] != hour:
                entry[2], entry[3] = hour, 0
            entry[1] += 1
            entry[3] += 1
            per_minute, per_hour = self.per_minute, self.per_hour
            used_minute, used_hour = entry[1], entry[3]
        minute_reset, hour_reset = (minute + 1) * 60, (hour + 1) * 3600
        over_minute, over_hour = used_minute > per_minute, used_hour > per_hour
        left_minute, left_hour = max(0, per_minute - used_minute), max(0, per_hour - used_hour)
        if over_hour or (not over_minute and left_hour < left_minute):
            limit, remaining, reset = per_hour, left_hour, hour_reset
        else:
            limit, remaining, reset = per_minute, left_minute, minute_reset
        allowed = not (over_minute or over_hour)
        return Decision(
            allowed=allowed,
            limit=limit,
            remaining=remaining,
            reset=reset,
            retry_after=max(1, math.ceil(reset - now)),
        )

    def peek(self) -> Decision:
        """Headers for a request that is not counted (no valid key): a fresh minute window."""
        now = self._clock()
        reset = (int(now // 60) + 1) * 60
        return Decision(
            True, self.per_minute, self.per_minute, reset, max(1, math.ceil(reset - now))
        )
