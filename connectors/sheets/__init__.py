"""Google Sheets as a lead source and a status sink, on the real gspread library.

Build clients with `SheetsConnection` (Google with a service account, or any base URL such as
the loopback sandbox), read leads with `SheetsLeadSource`, write statuses with
`SheetsStatusSink`. Every call is paced and retried a bounded number of times.
"""

from connectors._tabular import NoHeaderError, StatusColumns
from connectors.retry import RetryPolicy
from connectors.sheets.calls import SHEETS_RETRY_POLICY, RequestPacer
from connectors.sheets.connection import GOOGLE_SHEETS_API, SheetsConnection
from connectors.sheets.errors import (
    SheetsAPIError,
    SheetsBadRequestError,
    SheetsConnectionError,
    SheetsCredentialsError,
    SheetsError,
    SheetsNotFoundError,
    SheetsPermissionError,
    SheetsRateLimitError,
    SheetsServerError,
    WorksheetNotFoundError,
)
from connectors.sheets.sink import SheetsStatusSink
from connectors.sheets.source import SheetsLeadSource

__all__ = [
    "GOOGLE_SHEETS_API",
    "SHEETS_RETRY_POLICY",
    "NoHeaderError",
    "RequestPacer",
    "RetryPolicy",
    "SheetsAPIError",
    "SheetsBadRequestError",
    "SheetsConnection",
    "SheetsConnectionError",
    "SheetsCredentialsError",
    "SheetsError",
    "SheetsLeadSource",
    "SheetsNotFoundError",
    "SheetsPermissionError",
    "SheetsRateLimitError",
    "SheetsServerError",
    "SheetsStatusSink",
    "StatusColumns",
    "WorksheetNotFoundError",
]
