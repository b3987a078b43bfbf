"""Builds real `gspread.Client` objects: Google with a service account, or any other base URL.

The same code serves Google and the loopback sandbox: only the base URL and the credentials
differ. gspread hard-codes ``https://sheets.googleapis.com``, so another base URL is reached
by mounting `connectors._http.BaseURLRewriteAdapter` on the client's session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gspread
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.service_account import Credentials
from gspread.auth import DEFAULT_SCOPES

from connectors._http import BaseURLRewriteAdapter
from connectors.sheets.errors import SheetsCredentialsError

__all__ = ["GOOGLE_SHEETS_API", "SheetsConnection"]

GOOGLE_SHEETS_API = "https://sheets.googleapis.com"

_REQUIRED_SA_KEYS = ("client_email", "private_key", "token_uri")


class SheetsConnection:
    """A secret-safe recipe for `gspread.Client` objects.

    Args:
        service_account_info: The service account's JSON key as a dict (kept private: never
            shown in reprs, logs or errors). None for no Google credentials.
        access_token: A ready OAuth access token to send as a bearer token instead (also
            private). The sandbox treats each token as a separate user for its quotas.
        api_base_url: Where Sheets calls go; ``https://sheets.googleapis.com`` for Google, the
            sandbox's URL for dry runs and tests.
        scopes: OAuth scopes for the service account.
        timeout: (connect, read) timeout in seconds for every call.

    Example:
        ```python
        conn = SheetsConnection(service_account_info=json.loads(key_json))
        source = SheetsLeadSource(conn.client(), spreadsheet_id="1AbC...")
        ```
    """

    def __init__(
        self,
        *,
        service_account_info: Mapping[str, Any] | None = None,
        access_token: str | None = None,
        api_base_url: str = GOOGLE_SHEETS_API,
        scopes: Sequence[str] = tuple(DEFAULT_SCOPES),
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        if service_account_info is not None and access_token is not None:
            raise ValueError("give service_account_info or access_token, not both")
        if service_account_info is not None:
            missing = [k for k in _REQUIRED_SA_KEYS if not service_account_info.get(k)]
            if missing:
                raise SheetsCredentialsError(
                    f"service account info lacks {', '.join(missing)} "
                    "(expected the JSON key file Google issues for a service account)"
                )
        if not api_base_url.startswith(("http://", "https://")):
            raise ValueError(f"api_base_url must be an http(s) URL, got {api_base_url!r}")
        self._service_account_info = dict(service_account_info) if service_account_info else None
        self._access_token = access_token
        self.api_base_url = api_base_url.rstrip("/")
        self.scopes = tuple(scopes)
        self.timeout = timeout

    def __repr__(self) -> str:
        if self._service_account_info is not None:
            auth = "service_account"
        elif self._access_token is not None:
            auth = "access_token"
        else:
            auth = "none"
        return f"SheetsConnection(api_base_url={self.api_base_url!r}, auth={auth})"

    def _session(self) -> requests.Session:
        session: requests.Session
        if self._service_account_info is not None:
            try:
                creds = Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    self._service_account_info, scopes=list(self.scopes)
                )
            except (ValueError, KeyError, TypeError) as exc:
                # Only the error's class: some key-parsing messages echo part of the key.
                raise SheetsCredentialsError(
                    f"service account info could not be loaded ({type(exc).__name__})"
                ) from None
            session = AuthorizedSession(creds)  # type: ignore[no-untyped-call]
        else:
            session = requests.Session()
            if self._access_token is not None:
                session.headers["Authorization"] = f"Bearer {self._access_token}"
        session.trust_env = False
        if self.api_base_url != GOOGLE_SHEETS_API:
            session.mount(
                GOOGLE_SHEETS_API + "/", BaseURLRewriteAdapter(GOOGLE_SHEETS_API, self.api_base_url)
            )
        return session

    def client(self) -> gspread.Client:
        """A new `gspread.Client` on gspread's plain HTTPClient (the connector does the retrying).

        Raises:
            SheetsCredentialsError: the service-account info cannot be loaded.
        """
        # With a session given, gspread uses it as is and needs no credentials object.
        client = gspread.Client(auth=None, session=self._session())  # type: ignore[arg-type]
        client.set_timeout(self.timeout)
        return client
