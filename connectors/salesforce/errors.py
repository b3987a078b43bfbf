"""Typed errors of the Salesforce connector.

```
SalesforceError                        base; never carries secrets
├── SalesforceAuthError                login refused, or an expired session that cannot be renewed
├── SalesforceRequestLimitExceeded     403 REQUEST_LIMIT_EXCEEDED: the org's daily allocation is spent
├── SalesforceBudgetExceeded           refused locally: the work would use too much of what is left
├── SalesforceQueryError               400 MALFORMED_QUERY / INVALID_FIELD / INVALID_TYPE from the API
├── SalesforceApiError                 any other error response (status, errorCode, message)
├── SalesforceConnectionError          no answer (connection refused, dropped, timed out) after retries
└── SalesforceJobError                 a Bulk 2.0 job that failed or was aborted
SoqlBuildError (ValueError)            a filter we refuse to turn into SOQL (unknown field, bad operator)
MappingError (connectors.leads)        a mapped field the object does not have (raised before any read)
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SalesforceApiError",
    "SalesforceAuthError",
    "SalesforceBudgetExceeded",
    "SalesforceConnectionError",
    "SalesforceError",
    "SalesforceJobError",
    "SalesforceQueryError",
    "SalesforceRequestLimitExceeded",
    "SoqlBuildError",
]


class SalesforceError(Exception):
    """Base of every Salesforce connector error.

    Attributes:
        status: HTTP status of the response, when there was one.
        error_code: Salesforce's ``errorCode`` (e.g. ``INVALID_FIELD``), when given.
        body: The parsed error body, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.body = body


class SalesforceAuthError(SalesforceError):
    """Login refused, or the session expired and the connection has no way to log in again."""


class SalesforceRequestLimitExceeded(SalesforceError):
    """The org's daily API request allocation is spent (403 REQUEST_LIMIT_EXCEEDED); not retried."""


class SalesforceBudgetExceeded(SalesforceError):
    """Work refused before it started: it would use more than its share of the remaining requests."""


class SalesforceQueryError(SalesforceError):
    """Salesforce refused a query (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE)."""


class SalesforceApiError(SalesforceError):
    """Any other error response from Salesforce."""


class SalesforceConnectionError(SalesforceError):
    """No answer from Salesforce (connection refused, dropped mid-response or timed out), after retries."""


class SalesforceJobError(SalesforceError):
    """A Bulk 2.0 job ended Failed or Aborted, or could not be created."""


class SoqlBuildError(ValueError):
    """A structured filter that cannot be turned into safe SOQL; the message names the field."""
