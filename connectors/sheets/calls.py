"""Every Sheets API call goes through here: bounded retries, client-side pacing, request counting.

gspread's own `BackOffHTTPClient` retries 429 and 5xx without limit (sleeping up to 128 s), so
it is refused; this module retries a bounded number of times instead, with capped exponential
backoff and jitter, and paces calls to stay within the per-user quota (60 a minute).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gspread
import requests
from gspread.http_client import BackOffHTTPClient

from connectors.sheets.errors import (
    SheetsAPIError,
    SheetsConnectionError,
    error_class,
)

__all__ = [
    "RETRY_STATUSES",
    "RequestPacer",
    "RetryPolicy",
    "SheetsCaller",
    "backoff_delay",
    "should_retry",
]

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a failed call.

    Every call the connector makes is idempotent (reads, and writes of fixed values to fixed
    cells), so 429, 5xx and transport failures are all retried.

    Attributes:
        max_retries: Retries after the first attempt (0 = never retry).
        base_delay: Seconds before the first retry; doubled for each further one.
        max_delay: Cap on any single wait, including a server's Retry-After.
        jitter: Up to this share of the delay is added at random, so clients spread out.
    """

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 32.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("RetryPolicy values must not be negative")


def should_retry(status: int | None) -> bool:
    """True for a status worth retrying (429, 408, 5xx) or a transport failure (None)."""
    return status is None or status in RETRY_STATUSES


def backoff_delay(
    retry: int, policy: RetryPolicy, *, retry_after: float | None = None, draw: float = 0.0
) -> float:
    """Seconds to wait before retry number `retry` (1 = first retry).

    Args:
        retry: 1 for the first retry, 2 for the second, ...
        policy: The retry policy.
        retry_after: The server's Retry-After in seconds, when it sent one; honoured up to
            `policy.max_delay`.
        draw: A number in [0, 1) scaling the jitter (random in use, fixed in tests).
    """
    delay = min(policy.max_delay, policy.base_delay * 2.0 ** (retry - 1))
    delay += delay * policy.jitter * draw
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(policy.max_delay, delay)


class RequestPacer:
    """Keeps calls within `max_requests` in any `per_seconds` window (a sliding-window log).

    A plain token bucket refilled at 1/s with room for a burst of 60 would let 120 requests
    through in some 60-second windows; the log of recent request times guarantees the limit
    for every window. Thread-safe; share one pacer between everything using the same account.
    """

    def __init__(
        self,
        max_requests: int = 60,
        per_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError("RequestPacer needs max_requests >= 1 and per_seconds > 0")
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Wait until one more request fits, record it, and return the seconds waited."""
        with self._lock:
            waited = 0.0
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.per_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    self.waited += waited
                    return waited
                pause = self.per_seconds - (now - self._sent[0])
                self._sleep(pause)
                waited += pause


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_details(response: requests.Response) -> tuple[str, str, object]:
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:500], response.text[:2000]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("status", "")), str(error.get("message", "")), body
    return "", str(body)[:500], body


class SheetsCaller:
    """Runs gspread calls with pacing and bounded retries, counting every request made.

    Args:
        client: A `gspread.Client` (not one built on `BackOffHTTPClient`).
        retry: Retry policy.
        pacer: Shared pacer; a new 60-per-minute one when None.
        sleep: Used between retries (injectable for tests).
        rng: Source of jitter.
    """

    def __init__(
        self,
        client: gspread.Client,
        *,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(client.http_client, BackOffHTTPClient):
            raise ValueError(
                "gspread's BackOffHTTPClient retries without limit; build the client with the "
                "default HTTPClient (SheetsConnection.client() does) and let the connector retry"
            )
        self.http = client.http_client
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or RequestPacer()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.requests = 0

    def call(self, operation: str, spreadsheet_id: str, fn: Callable[[], T]) -> T:
        """Run `fn` (one HTTP request through gspread), retrying what is worth retrying.

        Raises:
            SheetsAPIError: a subclass per status, once retries are spent or not allowed.
            SheetsConnectionError: no answer, once retries are spent.
        """
        attempt = 0
        while True:
            attempt += 1
            self.pacer.acquire()
            self.requests += 1
            status: int | None
            response: requests.Response | None = None
            try:
                return fn()
            except gspread.exceptions.APIError as exc:
                response = exc.response
                status = response.status_code
                failure: Exception = exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                status, failure = None, exc
            except requests.exceptions.ChunkedEncodingError as exc:
                status, failure = None, exc
            if not should_retry(status) or attempt > self.retry.max_retries:
                final = self._final(operation, spreadsheet_id, attempt, status, response, failure)
                raise final from failure
            self._sleep(
                backoff_delay(
                    attempt,
                    self.retry,
                    retry_after=_retry_after(response),
                    draw=self._rng.random(),
                )
            )

    @staticmethod
    def _final(
        operation: str,
        spreadsheet_id: str,
        attempts: int,
        status: int | None,
        response: requests.Response | None,
        failure: Exception,
    ) -> Exception:
        if status is None or response is None:
            # Only the exception's class: requests' messages can include full URLs and hosts.
            return SheetsConnectionError(
                f"Sheets API {operation} on spreadsheet {spreadsheet_id} got no answer after "
                f"{attempts} attempts ({type(failure).__name__})"
            )
        google_status, message, body = _error_details(response)
        cls = error_class(status)
        err: SheetsAPIError = cls(
            status=status,
            google_status=google_status,
            message=message,
            operation=operation,
            spreadsheet_id=spreadsheet_id,
            attempts=attempts,
            body=body,
        )
        return err
