"""Typed errors of the HubSpot connector.

```
HubSpotError                        base; never carries the token
├── HubSpotAuthError                401: token unknown, revoked or expired (INVALID/EXPIRED_AUTHENTICATION)
├── HubSpotScopeError               403 MISSING_SCOPES: names the scopes the token lacks
├── HubSpotRateLimitError           429 still answered after the retries allowed
├── HubSpotValidationError          400 VALIDATION_ERROR (a bad filter, property value or request)
├── HubSpotNotFound                 404 OBJECT_NOT_FOUND (a list, a property)
├── HubSpotApiError                 any other error response (status, category, message)
└── HubSpotConnectionError          no answer (refused, dropped, timed out) after retries
HubSpotFilterError (ValueError)     a filter we refuse to send (unknown property, bad operator or value)
MappingError (connectors.leads)     a mapped property the account does not have (raised before any read)
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HubSpotApiError",
    "HubSpotAuthError",
    "HubSpotConnectionError",
    "HubSpotError",
    "HubSpotFilterError",
    "HubSpotNotFound",
    "HubSpotRateLimitError",
    "HubSpotScopeError",
    "HubSpotValidationError",
]


class HubSpotError(Exception):
    """Base of every HubSpot connector error.

    Attributes:
        status: HTTP status of the response, when there was one.
        category: HubSpot's ``category`` (e.g. ``VALIDATION_ERROR``), when given.
        body: The parsed error body, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.body = body


class HubSpotAuthError(HubSpotError):
    """HubSpot refused the token: unknown, revoked or expired. Not retried."""


class HubSpotScopeError(HubSpotError):
    """The token lacks a scope the call needs; `scopes` names them."""

    def __init__(self, message: str, *, scopes: list[str], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.scopes = scopes


class HubSpotRateLimitError(HubSpotError):
    """HubSpot still answered 429 after every retry allowed (another app may share the account)."""


class HubSpotValidationError(HubSpotError):
    """HubSpot refused the request's content (400): a filter, a property value, a limit."""


class HubSpotNotFound(HubSpotError):
    """The object asked for does not exist (404)."""


class HubSpotApiError(HubSpotError):
    """Any other error response from HubSpot."""


class HubSpotConnectionError(HubSpotError):
    """No answer from HubSpot (connection refused, dropped or timed out), after retries."""


class HubSpotFilterError(ValueError):
    """A structured filter that cannot be sent safely; the message names the property."""
