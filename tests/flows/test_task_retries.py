"""Which failures a Prefect task retry may repeat: only what no client's retry layer already did."""

from __future__ import annotations

import httpx
import pytest
from prefect.states import Failed

from connectors.coldsend import (
    APIConnectionError,
    RequestInfo,
)
from connectors.coldsend.errors import error_for_response
from connectors.salesforce import SalesforceApiError, SalesforceRequestLimitExceeded
from flows.tasks import FinalError, retry_unless_client_error

INFO = RequestInfo("POST", "http://127.0.0.1:9/api/public/v1/campaigns")


def _retried(exc: BaseException, attempts: int = 6) -> BaseException:
    """What the retry layer leaves on a failure it judged transient (see connectors.retry)."""
    exc.retry_attempts = attempts  # type: ignore[attr-defined]
    return exc


def _status(status: int) -> BaseException:
    response = httpx.Response(status, json={"detail": "x"}, request=httpx.Request("POST", INFO.url))
    return error_for_response(response, request=INFO)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # Already retried by the client: a task retry would multiply the attempts.
        (_retried(_status(500)), False),
        (_retried(_status(429)), False),
        (_retried(APIConnectionError("refused", request=INFO), 3), False),
        (_retried(SalesforceApiError("503", status=503)), False),
        # Transient but not retried by the client (unsafe to repeat blindly): the task may.
        (_status(500), True),
        (APIConnectionError("lost", request=INFO), True),
        (RuntimeError("worker hiccup"), True),
        # Final whatever the layer.
        (_status(400), False),
        (SalesforceRequestLimitExceeded("daily", status=403), False),
        (LookupError("no such record"), False),
        (FinalError("named twice"), False),
        (ValueError("bad input"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_retry_unless_client_error(exc: BaseException, expected: bool) -> None:
    assert retry_unless_client_error(None, None, Failed(data=exc)) is expected
