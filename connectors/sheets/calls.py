"""Every Sheets API call goes through here: bounded retries, client-side pacing, request counting.

gspread's own `BackOffHTTPClient` retries 429 and 5xx without limit (sleeping up to 128 s), so
it is refused; calls are retried by the project's one retry layer (`connectors.retry`) with
`SHEETS_RETRY_POLICY`, and paced to stay within the per-user quota (60 a minute).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import gspread
import requests
from gspread.http_client import BackOffHTTPClient

from connectors._http import requests_failure
from connectors.retry import Failure, Retrying, RetryPolicy
from connectors.shared_budget import SharedBudget
from connectors.sheets.errors import (
    SheetsAPIError,
    SheetsConnectionError,
    error_class,
)

__all__ = ["SHEETS_REQUESTS_PER_MINUTE", "SHEETS_RETRY_POLICY", "RequestPacer", "SheetsCaller"]

T = TypeVar("T")

SHEETS_REQUESTS_PER_MINUTE = 60
"""Google's per-user quota: 60 read and 60 write requests a minute. Paced as one pool of 60
(reads and writes together), so neither quota can be exceeded; the shared budget of a Google
user (blocks/budgets.py) is sized from this figure too."""

SHEETS_RETRY_POLICY = RetryPolicy(
    statuses=frozenset({408, 429, 500, 502, 503, 504}),
    base_delay=1.0,
    max_backoff=32.0,
    reset_header=False,
)
"""Google's guidance: retry 408, 429 and 5xx with exponential backoff from about a second.

Every call the connector makes is idempotent (reads, and writes of fixed values to fixed
cells), so each is replay safe. A ``Retry-After`` is honoured up to the policy's `max_wait`
(not cut short, which would only run into the next 429)."""


class RequestPacer:
    """Keeps calls within `max_requests` in any `per_seconds` window (a sliding-window log).

    A plain token bucket refilled at 1/s with room for a burst of 60 would let 120 requests
    through in some 60-second windows; the log of recent request times guarantees the limit
    for every window. Thread-safe; share one pacer between everything using the same account.
    """

    def __init__(
        self,
        max_requests: int = SHEETS_REQUESTS_PER_MINUTE,
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
        retry: Retry policy; `SHEETS_RETRY_POLICY` when None.
        pacer: Shared pacer; a new 60-per-minute one when None.
        budget: A budget shared with other processes using the same Google user: one
            request taken right before each request sent (retries included).
        sleep: Used between retries (injectable for tests).
        rng: Source of jitter.
    """

    def __init__(
        self,
        client: gspread.Client,
        *,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        budget: SharedBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(client.http_client, BackOffHTTPClient):
            raise ValueError(
                "gspread's BackOffHTTPClient retries without limit; build the client with the "
                "default HTTPClient (SheetsConnection.client() does) and let the connector retry"
            )
        self.http = client.http_client
        self.retry = retry or SHEETS_RETRY_POLICY
        self.pacer = pacer or RequestPacer()
        self.budget = budget
        self._retrying = Retrying(self.retry, sleep=sleep, rng=rng)
        self.requests = 0

    def call(self, operation: str, spreadsheet_id: str, fn: Callable[[], T]) -> T:
        """Run `fn` (one HTTP request through gspread), retrying what is worth retrying.

        Raises:
            SheetsAPIError: a subclass per status, once retries are spent or not allowed.
            SheetsConnectionError: no answer, once retries are spent.
        """

        def attempt() -> T:
            self.pacer.acquire()
            if self.budget is not None:
                self.budget.take(1)
            self.requests += 1
            return fn()

        def give_up(exc: Exception, failure: Failure, attempts: int) -> BaseException:
            response = exc.response if isinstance(exc, gspread.exceptions.APIError) else None
            final = self._final(operation, spreadsheet_id, attempts, response, exc)
            final.__cause__ = exc
            return final

        return self._retrying.run(attempt, classify=_classify, replay_safe=True, give_up=give_up)

    @staticmethod
    def _final(
        operation: str,
        spreadsheet_id: str,
        attempts: int,
        response: requests.Response | None,
        failure: Exception,
    ) -> Exception:
        if response is None:
            # Only the exception's class: requests' messages can include full URLs and hosts.
            return SheetsConnectionError(
                f"Sheets API {operation} on spreadsheet {spreadsheet_id} got no answer after "
                f"{attempts} attempts ({type(failure).__name__})"
            )
        google_status, message, body = _error_details(response)
        cls = error_class(response.status_code)
        err: SheetsAPIError = cls(
            status=response.status_code,
            google_status=google_status,
            message=message,
            operation=operation,
            spreadsheet_id=spreadsheet_id,
            attempts=attempts,
            body=body,
        )
        return err


def _classify(exc: Exception) -> Failure | None:
    """The retry layer's view of a failed gspread call (None: not a request failure)."""
    if isinstance(exc, gspread.exceptions.APIError):
        return Failure(status=exc.response.status_code, headers=exc.response.headers)
    return requests_failure(exc)
