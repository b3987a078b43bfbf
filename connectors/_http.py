"""Shared `requests` plumbing for the libraries that hard-code their hosts (simple-salesforce, gspread).

simple-salesforce always builds ``https://<instance>/...`` and gspread always calls
``https://sheets.googleapis.com``. To point them at another base URL (a regional proxy, a
recording proxy, the loopback sandbox), we mount an adapter on their `requests.Session` that
rewrites the scheme and host of each request. No other behaviour changes.
"""

from __future__ import annotations

from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from connectors.retry import Failure, Transport

__all__ = ["BaseURLRewriteAdapter", "new_session", "requests_failure"]


class BaseURLRewriteAdapter(HTTPAdapter):
    """Sends requests whose URL starts with `prefix` to `target` + the rest of the URL."""

    def __init__(self, prefix: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix.rstrip("/")
        self.target = target.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if url.startswith(self.prefix):
            request.url = self.target + url[len(self.prefix) :]
        return super().send(request, **kwargs)


def new_session(
    *, rewrite_from: str | None = None, rewrite_to: str | None = None
) -> requests.Session:
    """A fresh `requests.Session` ignoring proxy environment, optionally rewriting one base URL."""
    session = requests.Session()
    session.trust_env = False
    if rewrite_from and rewrite_to and rewrite_from.rstrip("/") != rewrite_to.rstrip("/"):
        session.mount(
            rewrite_from.rstrip("/") + "/", BaseURLRewriteAdapter(rewrite_from, rewrite_to)
        )
    return session


def requests_failure(exc: Exception) -> Failure | None:
    """The retry layer's view of a `requests` exception that brought no answer; None otherwise.

    A connect timeout, a refused connection or a name that does not resolve never reached the
    server (`Transport.CONNECT`); a reset, a read timeout or a broken body may have followed a
    request the server acted on (`Transport.LOST`).
    """
    if isinstance(exc, requests.ConnectTimeout):
        return Failure(transport=Transport.CONNECT)
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return Failure(transport=Transport.CONNECT)
        return Failure(transport=Transport.LOST)
    if isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return Failure(transport=Transport.LOST)
    return None
