"""The official hubspot-api-client, pointed at a base URL, paced, retried once in one place, typed.

`HubSpotConnection` builds the real `hubspot.HubSpot` client with the token and the base URL
(every api class used here takes the host from its Configuration: checked in the tests), with
urllib3's own retries turned off, so `request` is the only retry layer: it paces each call
through the rolling windows of `connectors.hubspot.pacing`, retries 429s after the wait
HubSpot's headers give, retries 5xx and transport failures when replaying is safe, and turns
every error into a `connectors.hubspot.errors` class. Answers are read raw
(``_preload_content=False``) and parsed as JSON: the generated models would cost several times
the CPU of the whole sync per contact and add nothing the connector reads.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from hubspot import HubSpot
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connectors.hubspot.errors import (
    HubSpotApiError,
    HubSpotAuthError,
    HubSpotConnectionError,
    HubSpotError,
    HubSpotNotFound,
    HubSpotRateLimitError,
    HubSpotScopeError,
    HubSpotValidationError,
)
from connectors.hubspot.pacing import HubSpotLimits, RollingWindow
from connectors.retry import (
    Failure,
    RetryPolicy,
    Transport,
    is_transient,
    mark_retried,
    retry_delay,
    should_retry,
)
from connectors.shared_budget import SharedBudget

__all__ = [
    "DEFAULT_BASE_URL",
    "HubSpotConnection",
    "PropertyInfo",
    "rate_limit_wait",
    "translate_error",
]

DEFAULT_BASE_URL = "https://api.hubapi.com"
Kind = Literal["api", "search"]

# The request was certainly not sent: safe to send again whatever it does.
_NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


@dataclass(frozen=True, slots=True)
class PropertyInfo:
    """A contact property as the properties API describes it."""

    name: str
    label: str
    type: str
    field_type: str
    group: str
    read_only: bool
    options: tuple[str, ...] = ()


def rate_limit_wait(headers: Mapping[str, str], body: Any, *, default: float) -> float:
    """Seconds to wait before retrying a 429, from what HubSpot sent.

    ``Retry-After`` when present; else the rolling window's length
    (``X-HubSpot-RateLimit-Interval-Milliseconds``) for the ten-second policy, one second for
    the search policy (``SECONDLY``, sent without the standard headers), else `default`.
    """
    told = headers.get("retry-after")
    if told is not None:
        try:
            seconds = float(told)
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
        except ValueError:
            pass
    policy = body.get("policyName") if isinstance(body, dict) else None
    if policy == "SECONDLY":
        return 1.0
    interval = headers.get("x-hubspot-ratelimit-interval-milliseconds")
    if interval is not None:
        try:
            return max(0.0, float(interval) / 1000)
        except ValueError:
            pass
    return default


def _parse(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body[:500]
    return body


def translate_error(status: int, body: Any, *, what: str) -> HubSpotError:
    """The connector error for a HubSpot error answer (never includes the token)."""
    parsed = _parse(body)
    data = parsed if isinstance(parsed, dict) else {}
    category = data.get("category")
    message = str(data.get("message") or parsed or f"HTTP {status}")
    if status == 401:
        expired = category == "EXPIRED_AUTHENTICATION"
        return HubSpotAuthError(
            f"HubSpot refused the token while {what}: "
            + ("it has expired; issue a new one. " if expired else "")
            + f"({category or 'HTTP 401'}: {message}). Check the private app token or service "
            "key in the HubSpot credentials block.",
            status=status,
            category=category,
            body=parsed,
        )
    if status == 403:
        scopes: list[str] = []
        for err in data.get("errors") or []:
            context = err.get("context") if isinstance(err, dict) else None
            if isinstance(context, dict):
                for key in ("requiredGranularScopes", "requiredScopes"):
                    scopes.extend(str(s) for s in context.get(key) or [])
        scopes = list(dict.fromkeys(scopes))
        named = ", ".join(scopes) if scopes else "a scope HubSpot did not name"
        return HubSpotScopeError(
            f"The HubSpot token lacks the scope {named}, needed for {what}. Add it to the "
            "private app (Settings > Integrations > Private apps > Scopes) and use the new token.",
            scopes=scopes,
            status=status,
            category=category,
            body=parsed,
        )
    if status == 429:
        return HubSpotRateLimitError(
            f"HubSpot's rate limit ({data.get('policyName', 'unknown policy')}) still refused "
            f"{what} after the retries allowed: {message}. Another app may share the account's "
            "budget; lower the store's rate-limit setting or run later.",
            status=status,
            category=category,
            body=parsed,
        )
    if status == 404:
        return HubSpotNotFound(
            f"HubSpot found nothing while {what}: {message}",
            status=status,
            category=category,
            body=parsed,
        )
    if status == 400:
        return HubSpotValidationError(
            f"HubSpot refused {what} ({category or 'HTTP 400'}): {message}",
            status=status,
            category=category,
            body=parsed,
        )
    return HubSpotApiError(
        f"HubSpot answered HTTP {status} while {what} ({category or 'no category'}): {message}",
        status=status,
        category=category,
        body=parsed,
    )


class HubSpotConnection:
    """One HubSpot account through hubspot-api-client: paced, retried, with typed errors.

    Example:
        ```python
        conn = HubSpotConnection(access_token="pat-na1-...", limits=HubSpotLimits(190))
        props = conn.properties()
        status, body = conn.request("api", conn.contacts_basic.get_page_with_http_info,
                                    what="listing contacts", limit=100)
        ```
    """

    def __init__(
        self,
        *,
        access_token: SecretStr | str,
        base_url: str = DEFAULT_BASE_URL,
        limits: HubSpotLimits | None = None,
        max_retries: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
        max_wait: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        shared_budget: SharedBudget | None = None,
    ) -> None:
        """Args:
        access_token: A private app access token or a service key.
        base_url: HubSpot's API root; the loopback sandbox's URL in tests and the demo.
        limits: The account's plan limits, used to pace requests.
        max_retries: Retries per request (429, 5xx, transport) before giving up.
        timeout: (connect, read) seconds for every request.
        max_wait: Longest single wait before a retry; a longer one fails the request.
        clock / wall / sleep / rng: Injectable time, sleep and jitter (tests).
        shared_budget: The account's budget shared with other processes: one request of
            the call's kind ("api" or "search") taken right before each request sent,
            retries included, after this connection's own windows allow it.
        """
        token = (
            access_token.get_secret_value() if isinstance(access_token, SecretStr) else access_token
        )
        if not token or not token.strip():
            raise ValueError("a HubSpot access token is required")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._token = SecretStr(token.strip())
        self.base_url = base_url.rstrip("/")
        self.limits = limits or HubSpotLimits()
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_wait = max_wait
        self._wall = wall
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.shared_budget = shared_budget
        self.api_window = RollingWindow(
            self.limits.per_ten_seconds,
            10.0,
            clock=clock,
            sleep=sleep,
            margin=self.limits.margin_seconds,
        )
        self.search_window = RollingWindow(
            self.limits.searches_per_second,
            1.0,
            clock=clock,
            sleep=sleep,
            margin=self.limits.margin_seconds,
        )
        self.request_count = 0
        self.rate_limited = 0
        self.retries = 0
        self._lock = threading.Lock()
        self._client: HubSpot | None = None
        self._apis: dict[str, Any] = {}
        self._properties: dict[str, PropertyInfo] | None = None

    def __repr__(self) -> str:
        return f"HubSpotConnection(base_url={self.base_url!r}, limits={self.limits!r})"

    # -- the library's api classes, built once each (each builds its own connection pool) ---

    @property
    def client(self) -> HubSpot:
        if self._client is None:
            self._client = HubSpot(
                access_token=self._token.get_secret_value(),
                host=self.base_url,
                # One retry layer: ours. urllib3 would otherwise retry connection errors itself.
                retry=Retry(
                    total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False
                ),
            )
        return self._client

    def _api(self, name: str, build: Callable[[HubSpot], Any]) -> Any:
        api = self._apis.get(name)
        if api is None:
            api = build(self.client)
            host = api.api_client.configuration.host
            if host.rstrip("/") != self.base_url:  # pragma: no cover - a library change
                raise HubSpotError(f"hubspot-api-client {name} ignores the host setting ({host})")
            self._apis[name] = api
        return api

    @property
    def contacts_basic(self) -> Any:
        return self._api("contacts.basic_api", lambda c: c.crm.contacts.basic_api)

    @property
    def contacts_batch(self) -> Any:
        return self._api("contacts.batch_api", lambda c: c.crm.contacts.batch_api)

    @property
    def contacts_search(self) -> Any:
        return self._api("contacts.search_api", lambda c: c.crm.contacts.search_api)

    @property
    def emails_batch(self) -> Any:
        return self._api("emails.batch_api", lambda c: c.crm.objects.emails.batch_api)

    @property
    def emails_search(self) -> Any:
        return self._api("emails.search_api", lambda c: c.crm.objects.emails.search_api)

    @property
    def properties_core(self) -> Any:
        return self._api("properties.core_api", lambda c: c.crm.properties.core_api)

    @property
    def properties_groups(self) -> Any:
        return self._api("properties.groups_api", lambda c: c.crm.properties.groups_api)

    @property
    def list_memberships(self) -> Any:
        return self._api("lists.memberships_api", lambda c: c.crm.lists.memberships_api)

    # -- the one request loop -------------------------------------------------------------------

    def request(
        self,
        kind: Kind,
        call: Callable[..., Any],
        *args: Any,
        what: str,
        replay_safe: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """Run one api-class method (a ``*_with_http_info`` one) and return (status, parsed JSON).

        Args:
            kind: "search" for CRM search calls (their own 5-a-second window), else "api".
            call: The bound api method; called with ``_preload_content=False``.
            what: What the request does, for error messages ("reading contacts").
            replay_safe: Whether sending it twice does no harm (reads and batch updates of the
                same values are; creates are not): decides retries after 5xx and lost answers.

        Raises:
            HubSpotError: the matching subclass for an error answer or a lost connection.
        """
        windows = [self.api_window] if kind == "api" else [self.search_window, self.api_window]
        attempt = 0
        while True:
            for window in windows:
                window.acquire()
            if self.shared_budget is not None:
                try:
                    self.shared_budget.take(1, kind)
                except BaseException:
                    for window in windows:
                        window.release()
                    raise
            status: int | None = None
            headers: Mapping[str, str] = {}
            body: Any = None
            raw: bytes = b""
            error: Exception | None = None
            try:
                with self._lock:
                    self.request_count += 1
                response = call(
                    *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
                )
                raw = response.data  # a body cut short raises here, before status is set
                status, headers = int(response.status), response.headers
            except urllib3.exceptions.HTTPError as exc:
                error = exc
            except Exception as exc:
                # hubspot's ApiException: an error status, or status 0 for an SSL failure.
                status = getattr(exc, "status", None)
                if status is None:
                    raise
                headers = getattr(exc, "headers", None) or {}
                body = getattr(exc, "body", None)
                if status == 0:
                    error, status = exc, None
            finally:
                for window in windows:
                    window.release()
            if headers and kind == "api":
                self.api_window.observe(headers)
            if status is not None and 200 <= status < 300:
                return status, json.loads(raw) if raw else None
            parsed = _parse(body) if body is not None else None
            if status == 429:
                with self._lock:
                    self.rate_limited += 1
                if isinstance(parsed, dict) and parsed.get("policyName") == "DAILY":
                    raise translate_error(status, body, what=what)
            policy = RetryPolicy(max_retries=self.max_retries, max_wait=self.max_wait)
            failure = Failure(
                status=status,
                headers=headers,
                transport=_transport(error) if status is None else None,
            )
            retry = should_retry(policy, failure, retries=attempt, replay_safe=replay_safe)
            # A transient failure given up on is marked, so no task retry repeats the attempts.
            transient = is_transient(policy, failure, replay_safe=replay_safe)
            if not retry:
                if status is None:
                    lost = HubSpotConnectionError(
                        f"No answer from HubSpot while {what} after {attempt + 1} attempt(s): "
                        f"{type(error).__name__}"
                    )
                    raise (mark_retried(lost, attempt + 1) if transient else lost) from None
                final = translate_error(status, body, what=what)
                raise mark_retried(final, attempt + 1) if transient else final
            if status == 429:
                wait = rate_limit_wait(headers, parsed, default=1.0) + self._rng.uniform(0, 0.1)
            else:
                wait = retry_delay(
                    policy, failure, retries=attempt, now=self._wall(), rng=self._rng
                )
            if wait > self.max_wait:
                if status is None:
                    lost = HubSpotConnectionError(f"No answer from HubSpot while {what}")
                    raise mark_retried(lost, attempt + 1) from None
                raise mark_retried(translate_error(status, body, what=what), attempt + 1)
            with self._lock:
                self.retries += 1
            self._sleep(wait)
            attempt += 1

    # -- properties -----------------------------------------------------------------------------

    def properties(self, *, refresh: bool = False) -> dict[str, PropertyInfo]:
        """The account's contact properties by name (read once per connection)."""
        if self._properties is None or refresh:
            _, body = self.request(
                "api",
                self.properties_core.get_all_with_http_info,
                "contacts",
                what="reading the contact properties",
            )
            out: dict[str, PropertyInfo] = {}
            for item in (body or {}).get("results", []):
                meta = item.get("modificationMetadata") or {}
                out[item["name"]] = PropertyInfo(
                    name=item["name"],
                    label=str(item.get("label") or item["name"]),
                    type=str(item.get("type") or ""),
                    field_type=str(item.get("fieldType") or ""),
                    group=str(item.get("groupName") or ""),
                    read_only=bool(meta.get("readOnlyValue", False)),
                    options=tuple(str(o.get("value")) for o in item.get("options") or []),
                )
            self._properties = out
        return self._properties


def _transport(error: Exception | None) -> Transport:
    """The shared policy's view of a urllib3 failure: connect failures were never sent."""
    if isinstance(error, _NOT_SENT) or isinstance(getattr(error, "reason", None), _NOT_SENT):
        return Transport.CONNECT
    return Transport.LOST
