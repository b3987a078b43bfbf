"""Real client libraries wired to a running sandbox, for your own scripts, notebooks and CI.

simple-salesforce always builds ``https://<instance>/...`` URLs and gspread always calls
``https://sheets.googleapis.com``; the sandboxes serve plain HTTP on loopback. Each function
here returns the genuine library client on a `requests.Session` whose adapter sends those
URLs to the sandbox, so every call you write runs unchanged against it::

    from sandbox.clients import salesforce_client, sheets_client

    sf = salesforce_client("http://127.0.0.1:8766", username="user@sandbox.example",
                           password="...", security_token="...")   # simple-salesforce's SOAP login
    sf.Lead.create({"LastName": "Lovelace", "Company": "Analytical Engines"})

    gc = sheets_client("http://127.0.0.1:8767")
    sh = gc.create("Leads")
    sh.sheet1.update([["Email"], ["ada@example.com"]], "A1")

    hs = hubspot_client("http://127.0.0.1:8768", access_token="pat-sandbox-...")
    hs.crm.contacts.basic_api.get_page(limit=10)

`prefect-coldsend sandbox` prints these lines with its own URLs and credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    import gspread
    from hubspot import HubSpot
    from simple_salesforce.api import Salesforce

__all__ = [
    "GOOGLE_APIS",
    "SALESFORCE_LOGIN_DOMAIN",
    "RedirectAdapter",
    "hubspot_client",
    "salesforce_client",
    "sandbox_session",
    "sheets_client",
]

GOOGLE_APIS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
"""The hosts gspread calls (Sheets v4, and Drive v3 for open-by-title, create and delete)."""

SALESFORCE_LOGIN_DOMAIN = "coldsend-sandbox"
"""simple-salesforce logs in at ``https://<domain>.salesforce.com``; this one goes to the sandbox."""

_TIMEOUT = 60.0


class RedirectAdapter(HTTPAdapter):
    """Sends requests for one https prefix to a sandbox's http root, path and query kept."""

    def __init__(self, prefix: str, target: str, timeout: float = _TIMEOUT) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.target = target.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if url.startswith(self.prefix):
            request.url = self.target + url[len(self.prefix) :]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _root(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"sandbox URL {url!r} is not an http(s) URL: pass the root that "
            "`prefect-coldsend sandbox` prints, e.g. http://127.0.0.1:8766"
        )
    return f"{parts.scheme}://{parts.netloc}"


def sandbox_session(url: str, *, prefixes: tuple[str, ...] = ()) -> requests.Session:
    """A session sending ``https://<sandbox host:port>`` and each of `prefixes` to the sandbox.

    Proxy environment variables are ignored (the sandbox is on loopback).
    """
    root = _root(url)
    session = requests.Session()
    session.trust_env = False
    host = urlsplit(root).netloc
    for prefix in (f"https://{host}", *prefixes):
        session.mount(prefix + "/", RedirectAdapter(prefix, root))
    return session


def salesforce_client(
    url: str = "http://127.0.0.1:8766",
    *,
    username: str | None = None,
    password: str | None = None,
    security_token: str | None = None,
    consumer_key: str | None = None,
    consumer_secret: str | None = None,
    session_id: str | None = None,
    version: str | None = None,
) -> Salesforce:
    """A real `simple_salesforce.Salesforce` logged in to the Salesforce sandbox at `url`.

    Give ``username`` + ``password`` + ``security_token`` (simple-salesforce's SOAP login),
    ``consumer_key`` + ``consumer_secret`` (OAuth client credentials), or a ``session_id``.

    Raises:
        ValueError: no complete set of credentials.
        simple_salesforce.SalesforceAuthenticationFailed: the sandbox refused them.
    """
    from simple_salesforce.api import Salesforce

    root = _root(url)
    login_host = f"https://{SALESFORCE_LOGIN_DOMAIN}.salesforce.com"
    session = sandbox_session(root, prefixes=(login_host,))
    extra: dict[str, Any] = {"version": version} if version else {}
    if session_id:
        https_root = f"https://{urlsplit(root).netloc}"
        return Salesforce(instance_url=https_root, session_id=session_id, session=session, **extra)
    if username and password is not None and security_token is not None:
        return Salesforce(
            username=username,
            password=password,
            security_token=security_token,
            domain=SALESFORCE_LOGIN_DOMAIN,
            session=session,
            **extra,
        )
    if consumer_key and consumer_secret:
        return Salesforce(
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            domain=SALESFORCE_LOGIN_DOMAIN,
            session=session,
            **extra,
        )
    raise ValueError(
        "salesforce_client needs username + password + security_token, consumer_key + "
        "consumer_secret, or session_id (`prefect-coldsend sandbox` prints them)"
    )


def sheets_client(url: str = "http://127.0.0.1:8767", *, user: str | None = None) -> gspread.Client:
    """A real `gspread.Client` on the Google Sheets sandbox at `url`.

    Args:
        url: The Sheets sandbox root.
        user: Any name: the sandbox counts its per-user quotas (60 a minute) by it.
    """
    import gspread

    session = sandbox_session(url, prefixes=GOOGLE_APIS)
    if user:
        session.headers["Authorization"] = f"Bearer {user}"
    # Handed a session and no credentials, gspread sends none of its own.
    return gspread.Client(auth=None, session=session)  # type: ignore[arg-type]


def hubspot_client(url: str = "http://127.0.0.1:8768", *, access_token: str) -> HubSpot:
    """A real `hubspot.HubSpot` (hubspot-api-client) on the HubSpot sandbox at `url`.

    The library takes its host as a setting, so no adapter is needed: every api class
    (``crm.contacts.basic_api``, ``search_api``, ``batch_api``, properties, lists) calls `url`.

    Args:
        url: The HubSpot sandbox root.
        access_token: The token `prefect-coldsend sandbox` prints.
    """
    from hubspot import HubSpot

    if not access_token:
        raise ValueError("hubspot_client needs the access token `prefect-coldsend sandbox` prints")
    return HubSpot(access_token=access_token, host=_root(url))
