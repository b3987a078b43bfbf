"""A logged-in `simple_salesforce.Salesforce`, renewed once on expiry, with typed errors and usage tracking.

`SalesforceConnection` logs in with one of three recipes (username + password + security
token, OAuth client credentials, or an existing session id), builds the real
`simple_salesforce.Salesforce` on a `requests.Session`, and runs calls through `call`, which
logs in again once when Salesforce answers 401 INVALID_SESSION_ID and turns the library's
exceptions into `connectors.salesforce.errors` classes. An ``http://`` login or instance URL
(a local proxy, the loopback sandbox) is reached by mounting a base-URL rewrite adapter,
because simple-salesforce always builds ``https://`` URLs.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError as LibraryError,
)
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceOperationError,
)
from simple_salesforce.util import getUniqueElementValueFromXmlString

from connectors._http import BaseURLRewriteAdapter, requests_failure
from connectors.retry import Failure, Retrying, RetryPolicy
from connectors.salesforce.budget import ApiUsage, parse_limit_info
from connectors.salesforce.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceConnectionError,
    SalesforceError,
    SalesforceJobError,
    SalesforceQueryError,
    SalesforceRequestLimitExceeded,
)
from connectors.salesforce.soql import ObjectInfo
from connectors.shared_budget import SharedBudget

__all__ = [
    "DEFAULT_API_VERSION",
    "SALESFORCE_RETRY_POLICY",
    "SalesforceConnection",
    "bulk_first_wait",
    "translate_error",
]

DEFAULT_API_VERSION = "59.0"
T = TypeVar("T")
logger = logging.getLogger(__name__)

_OBJECT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Failures that say nothing about the request itself: worth another try.
SALESFORCE_RETRY_POLICY = RetryPolicy(max_retries=3, statuses=frozenset({500, 502, 503, 504}))
"""5xx answers and lost connections; Salesforce's refusals (403 REQUEST_LIMIT_EXCEEDED) are
final, and every call made through `SalesforceConnection.call` is safe to repeat."""
_QUERY_CODES = frozenset(
    {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"}
)


def bulk_first_wait(records: int, configured: float | None = None) -> float:
    """Seconds to let a Bulk 2.0 job of `records` run before its first status read.

    `configured` (a connector's ``bulk_poll_seconds``) wins when given. Otherwise the wait
    grows with the job: half a second plus one per 10,000 records, at most five, so a job of
    a few thousand records is not held to a fixed multi-second wait, and a large one is not
    polled while it certainly still runs (each poll costs an API call of the daily
    allocation). simple-salesforce then polls at about that interval until the job ends.
    """
    if configured is not None:
        return configured
    return min(5.0, 0.5 + records / 10_000)


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: simple-salesforce sends most without one."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, **kwargs)


class _RewriteAdapter(BaseURLRewriteAdapter):
    """`BaseURLRewriteAdapter` with the same default timeout."""

    def __init__(self, prefix: str, target: str, timeout: tuple[float, float]) -> None:
        super().__init__(prefix, target)
        self.default_timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, **kwargs)


def _query(sf: Salesforce, *, soql: str, headers: dict[str, str] | None) -> Any:
    return sf.query(soql, headers=headers or {})


def _query_more(sf: Salesforce, *, url: str, headers: dict[str, str] | None) -> Any:
    return sf.query_more(url, identifier_is_url=True, headers=headers or {})


def _error_details(exc: LibraryError) -> tuple[str | None, str]:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message", ""))
    if isinstance(content, dict):
        return content.get("errorCode"), str(content.get("message", content))
    return None, str(content if content is not None else exc)


def translate_error(exc: Exception) -> SalesforceError:
    """The connector error for a simple-salesforce exception (messages never include secrets)."""
    if isinstance(exc, SalesforceError):
        return exc
    if not isinstance(exc, LibraryError):
        return SalesforceJobError(f"Salesforce Bulk 2.0 job did not complete: {exc}")
    status = getattr(exc, "status", None)
    code, message = _error_details(exc)
    body = getattr(exc, "content", None)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return SalesforceRequestLimitExceeded(
            "Salesforce refused the request: the org's daily API request limit is reached "
            f"({message}). Requests are counted over a rolling 24 hours; retry later or ask "
            "an administrator for a higher allocation.",
            status=status,
            error_code=code,
            body=body,
        )
    if status == 401:
        return SalesforceAuthError(
            f"Salesforce rejected the session ({code}: {message})",
            status=status,
            error_code=code,
            body=body,
        )
    if code in _QUERY_CODES:
        return SalesforceQueryError(
            f"Salesforce refused the query ({code}): {message}",
            status=status,
            error_code=code,
            body=body,
        )
    return SalesforceApiError(
        f"Salesforce answered HTTP {status} ({code or 'no error code'}): {message}",
        status=status,
        error_code=code,
        body=body,
    )


def _login_base(domain: str, login_url: str | None) -> str:
    if login_url:
        parts = urlsplit(login_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"login_url must be an http(s) URL, got {login_url!r}")
        return f"{parts.scheme}://{parts.netloc}"
    if "/" in domain or ":" in domain:
        raise ValueError(
            "domain is a host name such as 'login', 'test' or 'acme.my'; use login_url for URLs"
        )
    host = domain if domain.endswith(".salesforce.com") else f"{domain}.salesforce.com"
    return f"https://{host}"


class SalesforceConnection:
    """Builds and keeps a real `simple_salesforce.Salesforce`, logging in again once on expiry.

    Give exactly one recipe: ``username`` + ``password`` + ``security_token`` (SOAP login; add
    ``consumer_key`` + ``consumer_secret`` to use the OAuth password grant instead),
    ``consumer_key`` + ``consumer_secret`` (OAuth client credentials), or ``session_id`` +
    ``instance_url`` (no renewal possible).

    Example:
        ```python
        conn = SalesforceConnection(consumer_key=key, consumer_secret=secret, domain="acme.my")
        info = conn.describe("Lead")
        rows = conn.call(lambda sf: sf.query("SELECT Id FROM Lead LIMIT 1"))
        ```
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | SecretStr | None = None,
        security_token: str | SecretStr | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | SecretStr | None = None,
        session_id: str | SecretStr | None = None,
        instance_url: str | None = None,
        domain: str = "login",
        login_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        shared_budget: SharedBudget | None = None,
        budgeted_allocation: int | None = None,
    ) -> None:
        """Args:
        username / password / security_token: Password login (SOAP, or OAuth password grant
            with consumer_key + consumer_secret).
        consumer_key / consumer_secret: Connected app credentials (client credentials flow).
        session_id / instance_url: An existing access token and the instance it is valid for.
        domain: "login", "test" or a My Domain host ("acme.my" or "acme.my.salesforce.com").
        login_url: Overrides the login host built from `domain` (any http(s) base URL).
        api_version: REST API version, e.g. "59.0".
        session: `requests.Session` to use; a fresh one ignoring proxy environment otherwise.
        timeout: (connect, read) seconds for requests made without their own timeout.
        retry: Retry policy; `SALESFORCE_RETRY_POLICY` when None.
        sleep / rng: Used between retries (injectable for tests).
        shared_budget: The org's daily budget shared with other processes: each call
            takes one request right before it runs (every retry is a call), and the
            requests it made beyond that one (query pages, Bulk 2.0 job steps and polls, a
            rerun after a renewed session) right after it.
        budgeted_allocation: The daily allocation that budget was sized from: when the org
            reports another (``Sforce-Limit-Info``), a warning says so, once.
        """

        def secret(value: str | SecretStr | None) -> SecretStr | None:
            return value if isinstance(value, SecretStr) or value is None else SecretStr(value)

        if api_version.startswith("v"):
            raise ValueError(f"api_version is a number such as '59.0', got {api_version!r}")
        self.username = username
        self._password = secret(password)
        self._security_token = secret(security_token)
        self.consumer_key = consumer_key
        self._consumer_secret = secret(consumer_secret)
        self._session_id = secret(session_id)
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        self.api_version = api_version
        self.login_base = _login_base(domain, login_url)
        self.domain = domain

        if (
            username
            and self._password is not None
            and (self._security_token is not None or self.consumer_key)
        ):
            self.auth_type = (
                "oauth-password" if consumer_key and self._consumer_secret else "password"
            )
        elif consumer_key and self._consumer_secret is not None:
            self.auth_type = "client-credentials"
        elif self._session_id is not None and self.instance_url:
            self.auth_type = "session"
        else:
            raise ValueError(
                "SalesforceConnection needs username + password + security_token, "
                "consumer_key + consumer_secret, or session_id + instance_url"
            )

        if session is None:
            session = requests.Session()
            session.trust_env = False
            adapter = _TimeoutAdapter(timeout)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._timeout = timeout
        self.session.hooks["response"].append(self._on_response)
        self.usage: ApiUsage | None = None
        # API requests answered so far (logins excluded), for WriteResult.requests and the like.
        self.request_count = 0
        self._client: Salesforce | None = None
        self._describes: dict[str, ObjectInfo] = {}
        self._lock = threading.Lock()
        self._last = threading.local()
        self.shared_budget = shared_budget
        self._paid = 0  # requests paid to the shared budget so far
        self.budgeted_allocation = budgeted_allocation
        self._allocation_checked = False
        self._count_lock = threading.Lock()
        self.retry_policy = retry or SALESFORCE_RETRY_POLICY
        self._retrying = Retrying(self.retry_policy, sleep=sleep, rng=rng)

    def __repr__(self) -> str:
        return (
            f"SalesforceConnection(auth_type={self.auth_type!r}, username={self.username!r}, "
            f"login_base={self.login_base!r}, instance_url={self.instance_url!r}, "
            f"api_version={self.api_version!r})"
        )

    @property
    def can_renew(self) -> bool:
        """Whether an expired session can be replaced by logging in again."""
        return self.auth_type != "session"

    # -- hooks ----------------------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.headers = response.headers
        # Only API calls count against the daily allocation; logins do not.
        if "/services/data/" in (response.url or ""):
            with self._count_lock:
                self.request_count += 1
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
            if self.budgeted_allocation is not None and not self._allocation_checked:
                self._allocation_checked = True
                if usage.limit != self.budgeted_allocation:
                    logger.warning(
                        "The Salesforce org reports a daily API allocation of %s requests; its "
                        "shared budget is sized for %s: set daily_api_allocation=%s on the "
                        "Salesforce Credentials block and deploy again.",
                        f"{usage.limit:,}",
                        f"{self.budgeted_allocation:,}",
                        usage.limit,
                    )

    # -- login ----------------------------------------------------------------------------------

    def _reach(self, base_url: str) -> str:
        """Make `base_url` reachable by simple-salesforce; return the https form it will use."""
        parts = urlsplit(base_url)
        if parts.scheme == "https":
            return base_url
        https = f"https://{parts.netloc}"
        adapter = _RewriteAdapter(https, f"{parts.scheme}://{parts.netloc}", self._timeout)
        self.session.mount(https + "/", adapter)
        return https

    def _post_login(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.post(url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise SalesforceAuthError(
                f"could not reach the Salesforce login endpoint {url}: {type(exc).__name__}"
            ) from None

    def _login(self) -> tuple[str, str]:
        """(access token, instance base URL) from the configured recipe."""
        if self.auth_type == "session":
            assert self._session_id is not None and self.instance_url is not None
            return self._session_id.get_secret_value(), self.instance_url
        if self.auth_type == "password":
            return self._soap_login()
        data: dict[str, str] = {
            "client_id": self.consumer_key or "",
            "client_secret": self._consumer_secret.get_secret_value()
            if self._consumer_secret
            else "",
        }
        if self.auth_type == "oauth-password":
            token = self._security_token.get_secret_value() if self._security_token else ""
            assert self._password is not None
            data |= {
                "grant_type": "password",
                "username": self.username or "",
                "password": self._password.get_secret_value() + token,
            }
        else:
            data["grant_type"] = "client_credentials"
        url = f"{self.login_base}/services/oauth2/token"
        response = self._post_login(url, data=data)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not body.get("access_token"):
            raise SalesforceAuthError(
                f"Salesforce login ({self.auth_type}) at {url} failed: HTTP "
                f"{response.status_code} {body.get('error', '')}: {body.get('error_description', '')}".rstrip(
                    ": "
                ),
                status=response.status_code,
                error_code=body.get("error"),
            )
        return str(body["access_token"]), self.instance_url or str(body["instance_url"])

    def _soap_login(self) -> tuple[str, str]:
        assert self._password is not None
        token = self._security_token.get_secret_value() if self._security_token else ""
        body = (
            '<?xml version="1.0" encoding="utf-8" ?><env:Envelope '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><env:Header><urn:CallOptions>'
            "<urn:client>prefect-coldsend</urn:client><urn:defaultNamespace>sf"
            "</urn:defaultNamespace></urn:CallOptions></env:Header><env:Body>"
            '<n1:login xmlns:n1="urn:partner.soap.sforce.com">'
            f"<n1:username>{xml_escape(self.username or '')}</n1:username>"
            f"<n1:password>{xml_escape(self._password.get_secret_value() + token)}</n1:password>"
            "</n1:login></env:Body></env:Envelope>"
        )
        url = f"{self.login_base}/services/Soap/u/{self.api_version}"
        response = self._post_login(
            url,
            data=body.encode(),
            headers={"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"},
        )
        try:
            session_id = getUniqueElementValueFromXmlString(response.content, "sessionId")
            server_url = getUniqueElementValueFromXmlString(response.content, "serverUrl")
            code = getUniqueElementValueFromXmlString(response.content, "sf:exceptionCode")
            message = getUniqueElementValueFromXmlString(response.content, "sf:exceptionMessage")
        except Exception:  # not XML at all (a proxy's error page)
            session_id = server_url = code = message = None
        if response.status_code != 200 or not session_id or not server_url:
            raise SalesforceAuthError(
                f"Salesforce login (password) at {url} failed: HTTP {response.status_code} "
                f"{code or ''}: {message or ''}".rstrip(": "),
                status=response.status_code,
                error_code=code,
            )
        parts = urlsplit(server_url)
        return session_id, self.instance_url or f"{parts.scheme}://{parts.netloc}"

    def _connect(self) -> Salesforce:
        token, instance = self._login()
        https = self._reach(instance)
        logger.debug("Salesforce session established for %s (%s)", https, self.auth_type)
        # dict instead of the library's OrderedDict default: faster to parse, same content
        # Bench figure it holds up: "marginal us/lead" of the Salesforce sync and write-back.
        return Salesforce(
            instance_url=https,
            session_id=token,
            version=self.api_version,
            session=self.session,
            object_pairs_hook=dict,
        )

    @property
    def client(self) -> Salesforce:
        """The current `simple_salesforce.Salesforce`, logging in on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def renew(self, expired: Salesforce | None = None) -> Salesforce:
        """Log in again (unless another caller already did since `expired` was handed out).

        Raises:
            SalesforceAuthError: when the connection holds only a session id.
        """
        if not self.can_renew:
            raise SalesforceAuthError(
                "The Salesforce session expired or is invalid (401 INVALID_SESSION_ID), and "
                "this connection was given only a session id, so it cannot log in again. "
                "Provide a fresh session id or login credentials.",
                status=401,
                error_code="INVALID_SESSION_ID",
            )
        with self._lock:
            if self._client is None or self._client is expired:
                self._client = self._connect()
            return self._client

    # -- calls ----------------------------------------------------------------------------------

    def call(self, fn: Callable[[Salesforce], T], *, replay_safe: bool = True) -> T:
        """Run `fn` with the client; on 401 INVALID_SESSION_ID log in again once and rerun it.

        A 5xx answer or a connection that fails, drops or times out is retried by the one
        retry layer (`connectors.retry`, policy in `retry_policy`), honouring ``Retry-After``.
        Calls are taken as safe to repeat (reads, writes that set the same values again); a
        create is not (the server may have acted on a request whose answer was lost): pass
        ``replay_safe=False`` so only failures that never reached Salesforce are retried, and
        reconcile before trying again, as the activity sink does.

        Raises:
            SalesforceError: a typed error for any error response (see `translate_error`);
                `SalesforceConnectionError` when no answer came after the retries.
        """

        def on_retry(failure: Failure, retry: int, delay: float) -> None:
            logger.info(
                "Salesforce call failed (%s); retry %d of %d in %.2f s",
                f"HTTP {failure.status}" if failure.status is not None else failure.transport,
                retry,
                self.retry_policy.max_retries,
                delay,
            )

        return self._retrying.run(
            partial(self._call_once, fn),
            classify=self._classify,
            replay_safe=replay_safe,
            give_up=_give_up,
            on_retry=on_retry,
        )

    def _classify(self, exc: Exception) -> Failure | None:
        if isinstance(exc, SalesforceError):
            if exc.status is None:
                return None
            # The headers of the answer that raised it (this thread's last one): Retry-After.
            return Failure(status=exc.status, headers=getattr(self._last, "headers", {}))
        return requests_failure(exc)

    def _call_once(self, fn: Callable[[Salesforce], T]) -> T:
        if self.shared_budget is None:
            return self._run(fn)
        # One request paid before (most calls are one), the rest settled after.
        with self._count_lock:
            self._paid += 1
        self.shared_budget.take(1)
        try:
            return self._run(fn)
        finally:
            self.settle()

    def settle(self) -> int:
        """Pay the shared budget for requests made beyond those paid (pages, Bulk 2.0 job
        steps and polls, reruns); returns how many. A no-op without a shared budget."""
        if self.shared_budget is None:
            return 0
        with self._count_lock:
            unpaid = self.request_count - self._paid
            self._paid += max(unpaid, 0)
        if unpaid > 0:
            self.shared_budget.take(unpaid)
        return max(unpaid, 0)

    def _run(self, fn: Callable[[Salesforce], T]) -> T:
        sf = self.client
        try:
            return fn(sf)
        except SalesforceExpiredSession:
            pass
        except (LibraryError, SalesforceOperationError) as exc:
            raise translate_error(exc) from None
        sf = self.renew(sf)
        try:
            return fn(sf)
        except (LibraryError, SalesforceOperationError) as exc:
            raise translate_error(exc) from None

    def query_records(
        self, soql: str, *, headers: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records of a REST query, fetched page by page through ``nextRecordsUrl``.

        Each page is its own `call`, so a session that expires mid-read is renewed and the
        read continues where it was.
        """
        page = self.call(partial(_query, soql=soql, headers=headers))
        while True:
            yield from page["records"]
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.call(partial(_query_more, url=next_url, headers=headers))

    def describe(self, object_name: str) -> ObjectInfo:
        """The object's fields (one describe call per object, then cached)."""
        if not _OBJECT_RE.match(object_name):
            raise ValueError(f"{object_name!r} is not a Salesforce object name")
        cached = self._describes.get(object_name)
        if cached is None:
            raw = self.call(lambda sf: getattr(sf, object_name).describe())
            cached = ObjectInfo.from_describe(raw)
            self._describes[object_name] = cached
        return cached

    def fetch_usage(self) -> ApiUsage:
        """Ask ``limits/`` for the daily allocation (when no response has reported it yet)."""
        raw = self.call(lambda sf: sf.restful("limits/"))
        if self.usage is None:
            daily = (raw or {}).get("DailyApiRequests", {})
            limit = int(daily.get("Max", 0))
            self.usage = ApiUsage(used=limit - int(daily.get("Remaining", 0)), limit=limit)
        return self.usage


def _give_up(exc: Exception, failure: Failure, attempts: int) -> BaseException:
    if failure.status is not None:
        return exc
    # Only the class name: a requests error text may quote the login request.
    return SalesforceConnectionError(
        f"Salesforce did not answer ({type(exc).__name__}) after {attempts} attempts"
    )
