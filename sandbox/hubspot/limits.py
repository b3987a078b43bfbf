"""HubSpot's rate limits for the emulator: the rolling ten-second bucket, the search bucket, the day.

* Every request except searches counts against one rolling window per account:
  `ten_second_limit` requests (100 or 190 by plan) per `interval_ms` (10,000). Responses carry
  ``X-HubSpot-RateLimit-Max``, ``-Remaining``, ``-Interval-Milliseconds``, ``-Secondly``,
  ``-Secondly-Remaining``, ``-Daily`` and ``-Daily-Remaining``; a refused request gets a 429
  with policy ``TEN_SECONDLY_ROLLING`` (or ``DAILY``).
* Searches count against their own window: `search_per_second` (5) per second, without the
  standard headers (HubSpot leaves them off search responses); policy ``SECONDLY``.
Refused requests do not use up the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Admission", "Limits", "RateLimiter"]


class Limits(BaseModel):
    """The account's limits; `PUT /_sandbox/limits` replaces them (and starts fresh windows)."""

    model_config = ConfigDict(extra="forbid")

    ten_second_limit: int = Field(default=100, ge=1, description="100 (Free/Starter) or 190.")
    interval_ms: int = Field(default=10_000, ge=10, le=600_000)
    search_per_second: int = Field(default=5, ge=1)
    search_interval_ms: int = Field(default=1_000, ge=10, le=600_000)
    daily_limit: int = Field(default=250_000, ge=0)


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on one request: admitted or not, which policy refused it, headers to send."""

    admitted: bool
    policy: str | None
    headers: dict[str, str]


class RateLimiter:
    """Rolling windows of admitted request times, one for the API and one for searches."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.configure(limits)
        self.daily_used = 0

    def configure(self, limits: Limits) -> None:
        with self._lock:
            self.limits = limits
            self._api: deque[float] = deque()
            self._search: deque[float] = deque()

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def admit(self, *, search: bool) -> Admission:
        limits = self.limits
        with self._lock:
            now = self.clock()
            if self.daily_used >= limits.daily_limit:
                return Admission(False, "DAILY", self._headers(now) if not search else {})
            if search:
                self._trim(self._search, now, limits.search_interval_ms / 1000)
                if len(self._search) >= limits.search_per_second:
                    return Admission(False, "SECONDLY", {})
                self._search.append(now)
                self.daily_used += 1
                return Admission(True, None, {})
            self._trim(self._api, now, limits.interval_ms / 1000)
            if len(self._api) >= limits.ten_second_limit:
                return Admission(False, "TEN_SECONDLY_ROLLING", self._headers(now))
            self._api.append(now)
            self.daily_used += 1
            return Admission(True, None, self._headers(now))

    def _headers(self, now: float) -> dict[str, str]:
        limits = self.limits
        per_second = max(1, limits.ten_second_limit * 1000 // limits.interval_ms)
        last_second = sum(1 for t in self._api if t > now - 1.0)
        return {
            "X-HubSpot-RateLimit-Daily": str(limits.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                max(0, limits.daily_limit - self.daily_used)
            ),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(limits.interval_ms),
            "X-HubSpot-RateLimit-Max": str(limits.ten_second_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limits.ten_second_limit - len(self._api))),
            "X-HubSpot-RateLimit-Secondly": str(per_second),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, per_second - last_second)),
        }
