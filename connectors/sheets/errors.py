"""Errors raised by the Google Sheets connector.

```
SheetsError
├── SheetsAPIError                  the API answered with an error (status, Google status, message)
│   ├── SheetsBadRequestError       400: bad range, grid limits, invalid argument
│   ├── SheetsPermissionError       401 / 403: credentials missing, expired or not shared
│   ├── SheetsNotFoundError         404: no such spreadsheet (or not shared with the account)
│   ├── SheetsRateLimitError        429 RESOURCE_EXHAUSTED, still after every allowed retry
│   └── SheetsServerError           5xx, still after every allowed retry
├── SheetsConnectionError           no answer at all (connect, read, timeout), after retries
├── SheetsCredentialsError          service-account info unusable (never shows the info)
└── WorksheetNotFoundError          the spreadsheet has no such worksheet
```

Problems with the sheet's content raise `connectors._tabular.NoHeaderError` (empty sheet or
blank header row) and `connectors.leads.MappingError` (a mapped column is missing).
"""

from __future__ import annotations

__all__ = [
    "SheetsAPIError",
    "SheetsBadRequestError",
    "SheetsConnectionError",
    "SheetsCredentialsError",
    "SheetsError",
    "SheetsNotFoundError",
    "SheetsPermissionError",
    "SheetsRateLimitError",
    "SheetsServerError",
    "WorksheetNotFoundError",
]


class SheetsError(Exception):
    """Base class of every error the Sheets connector raises."""


class SheetsAPIError(SheetsError):
    """The Sheets API answered with an error.

    Attributes:
        status: HTTP status code.
        google_status: Google's status name (``RESOURCE_EXHAUSTED``, ``NOT_FOUND``, ...) or "".
        message: Google's error message.
        operation: What was being done, e.g. ``values.batchUpdate``.
        spreadsheet_id: The spreadsheet concerned.
        attempts: How many requests were made before giving up.
        body: The parsed error body (a dict), or the text when it was not JSON.
    """

    def __init__(
        self,
        *,
        status: int,
        google_status: str,
        message: str,
        operation: str,
        spreadsheet_id: str,
        attempts: int,
        body: object = None,
    ) -> None:
        self.status = status
        self.google_status = google_status
        self.message = message
        self.operation = operation
        self.spreadsheet_id = spreadsheet_id
        self.attempts = attempts
        self.body = body
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        name = f" {google_status}" if google_status else ""
        super().__init__(
            f"Sheets API {operation} on spreadsheet {spreadsheet_id} failed{tries}: "
            f"HTTP {status}{name}: {message}"
        )


class SheetsBadRequestError(SheetsAPIError):
    """400: the request was refused as invalid (bad range, grid limits, ...)."""


class SheetsPermissionError(SheetsAPIError):
    """401 or 403: credentials missing or expired, or the sheet is not shared with the account."""


class SheetsNotFoundError(SheetsAPIError):
    """404: the spreadsheet does not exist or is not shared with the account."""


class SheetsRateLimitError(SheetsAPIError):
    """429 RESOURCE_EXHAUSTED on every allowed attempt: the per-minute quota did not recover."""


class SheetsServerError(SheetsAPIError):
    """5xx on every allowed attempt."""


class SheetsConnectionError(SheetsError):
    """No answer from the API (connection refused or dropped, timeout), after every retry."""


class SheetsCredentialsError(SheetsError):
    """The service-account info cannot be used. The message never contains the info itself."""


class WorksheetNotFoundError(SheetsError, LookupError):
    """The spreadsheet has no worksheet with the requested title or index."""


def error_class(status: int) -> type[SheetsAPIError]:
    """The exception class for an HTTP status."""
    if status == 400:
        return SheetsBadRequestError
    if status in (401, 403):
        return SheetsPermissionError
    if status == 404:
        return SheetsNotFoundError
    if status == 429:
        return SheetsRateLimitError
    if status >= 500:
        return SheetsServerError
    return SheetsAPIError
