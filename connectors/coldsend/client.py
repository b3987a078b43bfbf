"""The typed, synchronous ColdSend API client: every public v1 endpoint, retries and pacing.

One `ColdSendClient` wraps one `httpx.Client`. Each call validates its input with the
request models, sends it (pacing under the rate limit, retrying what `connectors.retry`
allows) and returns a response model, or raises one `errors` class per failure.
"""

from __future__ import annotations

import functools
import hashlib
import json as jsonlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
import pydantic
from pydantic import SecretStr

from connectors.coldsend.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    InvalidRequestError,
    NotFoundError,
    RequestInfo,
    UploadTooLarge,
    error_for_response,
)
from connectors.coldsend.export import ExportStream
from connectors.coldsend.models import (
    MAX_PAGE_SIZE,
    MAX_UPLOAD_BYTES,
    Campaign,
    CampaignCreate,
    CampaignCreated,
    CampaignLead,
    CampaignPage,
    CampaignStateChanged,
    CampaignStatus,
    CampaignSummary,
    CampaignUpdate,
    CampaignUpdated,
    DeleteLeadsResult,
    DuplicateAction,
    Inbox,
    InboxCreated,
    InboxPage,
    InboxType,
    LeadCreate,
    LeadDetail,
    LeadPage,
    LeadUpdate,
    OperationResult,
    Pagination,
    SequenceStep,
    SmtpInboxCreate,
    UploadAccepted,
    UploadJob,
    Variant,
)
from connectors.coldsend.pacing import Pacer, RateLimitState
from connectors.leads import LeadStatus
from connectors.retry import Failure, Retrying, RetryPolicy, Transport

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "ClientStats",
    "ColdSendClient",
    "NotGiven",
]

logger = logging.getLogger("connectors.coldsend")

API_PATH: Final = "/api/public/v1"
DEFAULT_BASE_URL: Final = "https://api.coldsend.pro" + API_PATH
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=120.0, pool=30.0)
"""Per phase: a 50 MB upload needs a long write; a stuck server must not hold a run forever."""


def _user_agent() -> str:
    try:
        version = metadata.version("prefect-coldsend")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"prefect-coldsend/{version} httpx/{httpx.__version__}"


DEFAULT_USER_AGENT: Final = _user_agent()

_M = TypeVar("_M", bound=pydantic.BaseModel)
_T = TypeVar("_T")


class NotGiven:
    """Marks an argument as not passed, where None is a meaningful value (e.g. "no cap")."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        """The one instance, `NOT_GIVEN` (so identity checks work after copying or pickling)."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


@dataclass(slots=True)
class ClientStats:
    """What a client has done so far (benchmarks and run reports read it).

    Attributes:
        requests: HTTP requests sent or attempted, retries included.
        retries: Of those, repeats of a failed request.
        rate_limited: 429 answers received.
        paced_seconds: Time slept to stay under the rate limit without a 429.
        retry_wait_seconds: Time slept between retries.
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    retry_wait_seconds: float = 0.0


class _APIKeyAuth(httpx.Auth):
    """Adds ``X-API-Key`` while a request is sent and removes it afterwards.

    Responses and exceptions keep a reference to their request; taking the header off again
    means none of those objects carries the key once the call returns or raises.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "<ColdSend API key>"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["X-API-Key"] = self._key
        try:
            yield request
        finally:
            del request.headers["X-API-Key"]


def _segment(name: str, value: object) -> str:
    """A path parameter, checked non-empty and percent-encoded (so '../x' stays one segment)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string, got {value!r}")
    return quote(value.strip(), safe="")


def _build(model: type[_M], what: str, fields: Mapping[str, Any]) -> _M:
    """Validate a request body, turning pydantic's error into one naming each bad field."""
    given = {k: v for k, v in fields.items() if v is not NOT_GIVEN}
    try:
        return model.model_validate(given)
    except pydantic.ValidationError as exc:
        problems = exc.errors(include_input=False, include_url=False)
        text = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in problems
        )
        raise InvalidRequestError(
            f"invalid {what}: {text}",
            [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in problems],
        ) from None


def _page_args(page: int, limit: int) -> None:
    if not isinstance(page, int) or page < 1:
        raise InvalidRequestError(f"page must be an integer >= 1, got {page!r}")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}"
        )


def _query(**params: str | int | None) -> dict[str, str | int]:
    # Enum members are str subclasses whose str() is their value, so they pass through as is.
    return {key: value for key, value in params.items() if value is not None}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context shared by every client (httpx's default, built once).

    Building one loads the CA bundle, about 30 ms of CPU; the flows open a client per task, so
    a 100,000-lead sync paid it some twenty times. Like httpx, it honours SSL_CERT_FILE and
    SSL_CERT_DIR, as they are when the first client is made.
    """
    return httpx.create_ssl_context()


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose repetition has the effect of a single call (RFC 9110 section 9.2.2)."""

_TRANSPORT_KINDS: tuple[tuple[type[httpx.TransportError], Transport], ...] = (
    # Nothing reached the server: safe to send again whatever the request.
    (httpx.ConnectError, Transport.CONNECT),
    (httpx.ConnectTimeout, Transport.CONNECT),
    (httpx.PoolTimeout, Transport.CONNECT),
    # Sent (maybe partly) and the answer lost: the server may have acted on it.
    (httpx.ReadError, Transport.LOST),
    (httpx.ReadTimeout, Transport.LOST),
    (httpx.WriteError, Transport.LOST),
    (httpx.WriteTimeout, Transport.LOST),
    (httpx.RemoteProtocolError, Transport.LOST),
    (httpx.CloseError, Transport.LOST),
)


class _ErrorAnswer(Exception):
    """An error response, raised inside the retry loop so every failure is an exception."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _classify(exc: Exception) -> Failure | None:
    """The retry layer's view of one failed attempt (None: not a request failure)."""
    if isinstance(exc, _ErrorAnswer):
        return Failure(status=exc.response.status_code, headers=exc.response.headers)
    if isinstance(exc, httpx.TransportError):
        for cls, kind in _TRANSPORT_KINDS:
            if isinstance(exc, cls):
                return Failure(transport=kind)
        # UnsupportedProtocol, LocalProtocolError, ProxyError, DecodingError...: a retry would
        # fail the same way.
        return Failure(transport=Transport.FATAL)
    return None


class ColdSendClient:
    """Synchronous client of the ColdSend public API v1.

    Retries in the one retry layer (`connectors.retry`, policy in `retry_policy`) up to
    `max_retries` times with capped, jittered exponential backoff, waiting for
    ``Retry-After`` or ``X-RateLimit-Reset`` when given: 429 answers always; 5xx answers and
    lost answers only for requests that are safe to repeat (GET, PUT, DELETE, and a CSV upload
    with ``duplicate_action="skip"``), because the server may have acted on them; a refused or
    unreachable server twice at most, so a wrong URL fails within seconds. With `pacing` it spreads requests so the per-key limits are not hit. Not
    thread-safe: use one client per thread.

    Args:
        api_key: The key (``cs_live_...``), a `str` or `SecretStr`. Sent only in the
            ``X-API-Key`` header; never shown in reprs, logs or errors.
        base_url: API root, e.g. a sandbox's ``http://127.0.0.1:PORT/api/public/v1``.
        timeout: Seconds, or an `httpx.Timeout` per phase (connect, read, write, pool).
        max_retries: Retries after the first try (0 disables retrying).
        transport: An httpx transport (tests pass `httpx.MockTransport`); when given, proxy
            settings from the environment are ignored so the transport is always used.
        pacing: Sleep before requests when the rate-limit budget runs low (see `pacing`).
        sleep: The sleep function (tests inject a fake).
        user_agent: Sent as ``User-Agent``.
        max_retry_wait: Longest single wait the client accepts; when the server asks for more
            (an exhausted hourly budget), the error is raised instead of sleeping.
        clock: Current Unix time (for rate-limit headers), injectable.
        rng: Jitter source, injectable for reproducible tests.

    Example:
        ```python
        with ColdSendClient(api_key) as client:
            campaign = client.create_campaign(name="Q3 outreach: EMEA")
            for job in upload_leads(client, campaign.campaign_id, leads):
                print(job.success, job.duplicate, job.error)
        ```
    """

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        pacing: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = DEFAULT_USER_AGENT,
        max_retry_wait: float = 120.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not isinstance(key, str) or not key.strip():
            raise InvalidRequestError("api_key must be a non-empty string")
        if key != key.strip() or any(ord(ch) < 33 or ord(ch) == 127 for ch in key):
            # Checked here so the header layer never gets a chance to quote the key in an error.
            raise InvalidRequestError("api_key contains whitespace or control characters")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequestError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        # Identifies the key (for caches keyed per key) without revealing it.
        self.key_fingerprint = hashlib.sha256(f"{self.base_url}\n{key}".encode()).hexdigest()[:20]
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.stats = ClientStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._pacer = Pacer(clock=clock, sleep=sleep, max_wait=max_retry_wait, enabled=pacing)
        self.retry_policy = RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        self._retrying = Retrying(self.retry_policy, sleep=sleep, clock=clock, rng=self._rng)
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=timeout,
            transport=transport,
            trust_env=transport is None,
            verify=_ssl_context() if transport is None else True,
            follow_redirects=False,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            auth=_APIKeyAuth(key),
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"ColdSendClient(base_url={self.base_url!r})"

    def __enter__(self) -> ColdSendClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._http.close()

    @property
    def request_count(self) -> int:
        """HTTP requests sent or attempted so far, retries included."""
        return self.stats.requests

    @property
    def rate_limit(self) -> RateLimitState | None:
        """The rate-limit headers of the latest response that had them (None before any):
        the window that binds first, its limit, what is left and when it resets."""
        return self._pacer.state

    # -- the request loop -----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
        replay_safe: bool | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with pacing and retries; return a 2xx response or raise the matching error."""
        info = RequestInfo(method, str(self._http.build_request(method, path, params=params).url))

        def attempt() -> httpx.Response:
            # Built afresh each time: a multipart body is a stream that one send consumes.
            request = self._http.build_request(
                method, path, params=params, json=json, files=files, data=data
            )
            self.stats.paced_seconds += self._pacer.before_request()
            self.stats.requests += 1
            response = self._http.send(request, stream=stream)
            if stream and not response.is_success:
                try:
                    response.read()  # the error body, for the exception
                finally:
                    response.close()
            if response.is_success:
                self._pacer.observe(response.headers)
                return response
            if response.status_code == 429:
                # The retry policy honours a 429's own headers; the pacer would only double
                # the wait.
                self.stats.rate_limited += 1
            else:
                self._pacer.observe(response.headers)
            raise _ErrorAnswer(response)

        def on_retry(failure: Failure, retry: int, delay: float) -> None:
            what = failure.status if failure.status is not None else failure.transport
            logger.info(
                "ColdSend %s answered %s; retry %d of %d in %.2f s",
                info,
                what,
                retry,
                self.max_retries,
                delay,
            )
            self.stats.retries += 1
            self.stats.retry_wait_seconds += delay

        def give_up(exc: Exception, failure: Failure, attempts: int) -> BaseException:
            if isinstance(exc, _ErrorAnswer):
                return self._error(info, exc.response, None, attempts - 1)
            assert isinstance(exc, httpx.TransportError)
            return self._error(info, None, exc, attempts - 1)

        return self._retrying.run(
            attempt,
            classify=_classify,
            replay_safe=method.upper() in IDEMPOTENT_METHODS
            if replay_safe is None
            else replay_safe,
            give_up=give_up,
            on_retry=on_retry,
        )

    def _error(
        self,
        info: RequestInfo,
        response: httpx.Response | None,
        error: httpx.TransportError | None,
        attempt: int,
    ) -> APIStatusError | APIConnectionError:
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if response is not None:
            exc = error_for_response(response, request=info, now=self._clock())
            if tries:
                exc.args = (str(exc) + f" ({tries.strip()})",)
            if isinstance(exc, NotFoundError) and not self.base_url.endswith(API_PATH):
                exc.args = (str(exc) + self._prefix_hint(),)
            exc.__cause__ = None
            return exc
        assert error is not None
        cls = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
        what = "timed out" if cls is APITimeoutError else "failed"
        message = f"{info} {what}{tries}: {type(error).__name__}: {error}"
        if isinstance(error, httpx.ConnectError):
            origin = httpx.URL(self.base_url).copy_with(path="/", query=None)
            message += (
                f". Nothing answers at {str(origin).rstrip('/')}: check the base URL "
                "(COLDSEND_BASE_URL or the credentials block's) and that ColdSend, or "
                "`prefect-coldsend sandbox`, is running there"
            )
        result = cls(message, request=info)
        result.__cause__ = error
        return result

    def _prefix_hint(self) -> str:
        """Why a 404 may be the base URL's fault: it lacks the API's path."""
        return (
            f". The base URL {self.base_url} does not end in {API_PATH}, the API's path: "
            f"use {self.base_url}{API_PATH} (COLDSEND_BASE_URL or the credentials block)"
        )

    def _call(
        self,
        model: type[_M],
        method: str,
        path: str,
        *,
        fallback: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> _M:
        response = self._send(method, path, **kwargs)
        content = response.content
        try:
            if not content.strip() and fallback is not None:
                return model.model_validate(fallback)
            return model.model_validate_json(content)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise APIResponseValidationError(
                f"{method} {response.request.url} answered {response.status_code} with a body "
                f"that is not a {model.__name__}: {problems}",
                request=RequestInfo(method, str(response.request.url)),
                status_code=response.status_code,
            ) from None

    @staticmethod
    def _paginate(fetch: Callable[[int], tuple[list[_T], Pagination]]) -> Iterator[_T]:
        page = 1
        while True:
            items, pagination = fetch(page)
            yield from items
            if not items or not pagination.has_next:
                return
            page += 1

    # -- campaigns ------------------------------------------------------------------------------

    def create_campaign(
        self,
        *,
        name: str,
        timezone: str | NotGiven = NOT_GIVEN,
        start_date: datetime | NotGiven | None = NOT_GIVEN,
        sending_days: Seq[int] | NotGiven = NOT_GIVEN,
        sending_window_start: int | NotGiven = NOT_GIVEN,
        sending_window_end: int | NotGiven = NOT_GIVEN,
        sending_window_start_minute: int | NotGiven = NOT_GIVEN,
        sending_window_end_minute: int | NotGiven = NOT_GIVEN,
        daily_limit_per_inbox: int | NotGiven | None = NOT_GIVEN,
        enable_tracking: bool | NotGiven = NOT_GIVEN,
        enable_unsubscribe: bool | NotGiven = NOT_GIVEN,
    ) -> CampaignCreated:
        """Create a DRAFT campaign (POST /campaigns). Omitted settings take the API defaults.

        Not retried once sent (after a 5xx or a lost answer the campaign may exist): on
        `APIConnectionError` or `InternalServerError`, look it up by name with
        `iter_campaigns(search=...)` before creating it again.

        Raises:
            InvalidRequestError: A setting breaks a documented limit (name 8-255 chars, ...).
        """
        body = _build(
            CampaignCreate,
            "campaign",
            {
                "name": name,
                "timezone": timezone,
                "start_date": start_date,
                "sending_days": sending_days,
                "sending_window_start": sending_window_start,
                "sending_window_end": sending_window_end,
                "sending_window_start_minute": sending_window_start_minute,
                "sending_window_end_minute": sending_window_end_minute,
                "daily_limit_per_inbox": daily_limit_per_inbox,
                "enable_tracking": enable_tracking,
                "enable_unsubscribe": enable_unsubscribe,
            },
        )
        return self._call(
            CampaignCreated,
            "POST",
            "campaigns",
            json=body.model_dump(mode="json", exclude_unset=True),
        )

    def list_campaigns(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        status: CampaignStatus | str | None = None,
        search: str | None = None,
    ) -> CampaignPage:
        """One page of campaigns (GET /campaigns), optionally by status or name substring."""
        _page_args(page, limit)
        return self._call(
            CampaignPage,
            "GET",
            "campaigns",
            params=_query(page=page, limit=limit, status=status, search=search),
        )

    def iter_campaigns(
        self,
        *,
        status: CampaignStatus | str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[CampaignSummary]:
        """Every matching campaign, fetching pages of `page_size` as the iteration proceeds."""
        _page_args(1, page_size)

        def fetch(page: int) -> tuple[list[CampaignSummary], Pagination]:
            result = self.list_campaigns(page=page, limit=page_size, status=status, search=search)
            return result.campaigns, result.pagination

        return self._paginate(fetch)

    def get_campaign(self, campaign_id: str) -> Campaign:
        """The campaign with its settings, inboxes, variants, sequences and counters."""
        return self._call(Campaign, "GET", f"campaigns/{_segment('campaign_id', campaign_id)}")

    def update_campaign(
        self,
        campaign_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        timezone: str | NotGiven = NOT_GIVEN,
        start_date: datetime | NotGiven | None = NOT_GIVEN,
        sending_days: Seq[int] | NotGiven = NOT_GIVEN,
        sending_window_start: int | NotGiven = NOT_GIVEN,
        sending_window_end: int | NotGiven = NOT_GIVEN,
        sending_window_start_minute: int | NotGiven = NOT_GIVEN,
        sending_window_end_minute: int | NotGiven = NOT_GIVEN,
        daily_limit_per_inbox: int | NotGiven | None = NOT_GIVEN,
        enable_tracking: bool | NotGiven = NOT_GIVEN,
        enable_unsubscribe: bool | NotGiven = NOT_GIVEN,
        inbox_ids: Seq[str] | NotGiven = NOT_GIVEN,
        variants: Seq[Variant | Mapping[str, Any]] | NotGiven = NOT_GIVEN,
        sequences: Seq[SequenceStep | Mapping[str, Any]] | NotGiven = NOT_GIVEN,
        lead_mapping: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
    ) -> CampaignUpdated:
        """Change only the given settings of a DRAFT or PAUSED campaign (PUT /campaigns/{id}).

        Pass None to clear `start_date`, `daily_limit_per_inbox` or `lead_mapping`.

        Raises:
            InvalidRequestError: Nothing to change, or a value breaks a documented limit.
            BadRequestError: The campaign is not DRAFT or PAUSED.
        """
        cid = _segment("campaign_id", campaign_id)
        fields = {
            "name": name,
            "timezone": timezone,
            "start_date": start_date,
            "sending_days": sending_days,
            "sending_window_start": sending_window_start,
            "sending_window_end": sending_window_end,
            "sending_window_start_minute": sending_window_start_minute,
            "sending_window_end_minute": sending_window_end_minute,
            "daily_limit_per_inbox": daily_limit_per_inbox,
            "enable_tracking": enable_tracking,
            "enable_unsubscribe": enable_unsubscribe,
            "inbox_ids": inbox_ids,
            "variants": variants,
            "sequences": sequences,
            "lead_mapping": lead_mapping,
        }
        if all(v is NOT_GIVEN for v in fields.values()):
            raise InvalidRequestError("update_campaign needs at least one field to change")
        body = _build(CampaignUpdate, "campaign update", fields)
        return self._call(CampaignUpdated, "PUT", f"campaigns/{cid}", json=body.body())

    def launch_campaign(
        self,
        campaign_id: str,
        *,
        inbox_ids: Seq[str] | NotGiven = NOT_GIVEN,
        variants: Seq[Variant | Mapping[str, Any]] | NotGiven = NOT_GIVEN,
        sequences: Seq[SequenceStep | Mapping[str, Any]] | NotGiven = NOT_GIVEN,
    ) -> CampaignUpdated:
        """Ask a DRAFT campaign to start sending (PUT /campaigns/{id} with ``launch: true``).

        Inboxes, variants and sequences given here are set by the same request, before the
        requirements are checked, so a campaign can be completed and launched in one call.

        When requirements are missing the API still answers 200 and the campaign stays DRAFT
        (with the given settings applied): check ``result.status`` or
        ``result.missing_requirements`` (``leads``, ``inboxes``, ``variants``). A lost answer
        is not retried: the launch may have happened, and a repeat would fail with 400 because
        an ACTIVE campaign cannot be edited; read the campaign with `get_campaign` instead.
        """
        cid = _segment("campaign_id", campaign_id)
        fields = {"inbox_ids": inbox_ids, "variants": variants, "sequences": sequences}
        body = _build(CampaignUpdate, "campaign launch", {**fields, "launch": True})
        return self._call(
            CampaignUpdated, "PUT", f"campaigns/{cid}", json=body.body(), replay_safe=False
        )

    def pause_campaign(self, campaign_id: str) -> CampaignStateChanged:
        """Pause an ACTIVE campaign (400 otherwise)."""
        cid = _segment("campaign_id", campaign_id)
        return self._call(CampaignStateChanged, "POST", f"campaigns/{cid}/pause")

    def activate_campaign(self, campaign_id: str) -> CampaignStateChanged:
        """Resume a PAUSED campaign (400 otherwise)."""
        cid = _segment("campaign_id", campaign_id)
        return self._call(CampaignStateChanged, "POST", f"campaigns/{cid}/activate")

    def delete_campaign(self, campaign_id: str) -> CampaignStateChanged:
        """Delete a DRAFT or PAUSED campaign and its leads (400 otherwise)."""
        cid = _segment("campaign_id", campaign_id)
        return self._call(
            CampaignStateChanged,
            "DELETE",
            f"campaigns/{cid}",
            fallback={"campaign_id": campaign_id},
        )

    # -- leads ----------------------------------------------------------------------------------

    def upload_leads_csv(
        self,
        campaign_id: str,
        *,
        data: bytes,
        mapping: Mapping[str, str] | None = None,
        duplicate_action: DuplicateAction = "skip",
        filename: str = "leads.csv",
    ) -> UploadAccepted:
        """Start an asynchronous CSV import (POST /campaigns/{id}/leads, answers 202).

        Poll the returned ``job_id`` with `get_upload_job` or `upload.wait_for_upload_job`.
        `csvparts.iter_csv_parts` builds files within the limits.

        Args:
            campaign_id: The campaign (DRAFT, ACTIVE or PAUSED).
            data: The CSV file: header row, an email column, at most 10,000 rows and 50 MB.
            mapping: Lead field -> CSV header, e.g. ``{"email": "Work Email"}``.
            duplicate_action: What to do with emails already in the campaign.
            filename: File name sent in the form.

        Raises:
            UploadTooLarge: `data` is over 50 MB (nothing is sent).
            BadRequestError: Too many rows, no email column, or wrong campaign state.
        """
        cid = _segment("campaign_id", campaign_id)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidRequestError(
                f"data must be the CSV file's bytes, got {type(data).__name__}"
            )
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadTooLarge(
                f"CSV file is {len(data):,} bytes; ColdSend accepts at most {MAX_UPLOAD_BYTES:,} "
                "(50 MB) per upload: split it, e.g. with iter_csv_parts"
            )
        if duplicate_action not in ("skip", "update", "replace"):
            raise InvalidRequestError(
                f"duplicate_action must be 'skip', 'update' or 'replace', got {duplicate_action!r}"
            )
        form: dict[str, str] = {"duplicate_action": duplicate_action}
        if mapping:
            form["mapping"] = jsonlib.dumps(dict(mapping), separators=(",", ":"))
        # A lost answer to this POST may hide a file the server already accepted. Sending it
        # again is safe ONLY with duplicate_action="skip": every email the first upload imported
        # is then skipped as a duplicate, so the re-upload cannot double or overwrite anything.
        # With "update" or "replace" a repeat would apply the rows twice (and replace would
        # undo changes made in between), so only connect failures, which prove nothing was
        # sent, are retried.
        return self._call(
            UploadAccepted,
            "POST",
            f"campaigns/{cid}/leads",
            files={"file": (filename, bytes(data), "text/csv")},
            data=form,
            replay_safe=duplicate_action == "skip",
        )

    def get_upload_job(self, campaign_id: str, job_id: str) -> UploadJob:
        """The state and counts of an upload job."""
        cid = _segment("campaign_id", campaign_id)
        jid = _segment("job_id", job_id)
        return self._call(UploadJob, "GET", f"campaigns/{cid}/leads/upload/{jid}")

    def add_lead(
        self,
        campaign_id: str,
        *,
        email: str,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        custom_fields: Mapping[str, str] | None = None,
    ) -> CampaignLead:
        """Add one lead (POST /campaigns/{id}/leads/manual). For many, upload a CSV instead.

        Raises:
            ConflictError: The email is already in the campaign (compared case-insensitively).
        """
        cid = _segment("campaign_id", campaign_id)
        body = _build(
            LeadCreate,
            "lead",
            {
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "company": company,
                "custom_fields": dict(custom_fields) if custom_fields is not None else None,
            },
        )
        return self._call(
            CampaignLead,
            "POST",
            f"campaigns/{cid}/leads/manual",
            json=body.model_dump(mode="json", exclude_none=True),
        )

    def list_leads(
        self,
        campaign_id: str,
        *,
        page: int = 1,
        limit: int = 20,
        status: LeadStatus | str | None = None,
        search: str | None = None,
    ) -> LeadPage:
        """One page of a campaign's leads. To read every lead, `export_leads` is one request."""
        cid = _segment("campaign_id", campaign_id)
        _page_args(page, limit)
        return self._call(
            LeadPage,
            "GET",
            f"campaigns/{cid}/leads",
            params=_query(page=page, limit=limit, status=status, search=search),
        )

    def iter_leads(
        self,
        campaign_id: str,
        *,
        status: LeadStatus | str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[CampaignLead]:
        """Every matching lead, page by page (one request per `page_size` leads)."""
        _segment("campaign_id", campaign_id)
        _page_args(1, page_size)

        def fetch(page: int) -> tuple[list[CampaignLead], Pagination]:
            result = self.list_leads(
                campaign_id, page=page, limit=page_size, status=status, search=search
            )
            return result.leads, result.pagination

        return self._paginate(fetch)

    def get_lead(self, campaign_id: str, lead_id: str) -> LeadDetail:
        """One lead with its delivery status, email interactions and replies."""
        cid = _segment("campaign_id", campaign_id)
        lid = _segment("lead_id", lead_id)
        return self._call(LeadDetail, "GET", f"campaigns/{cid}/leads/{lid}")

    def update_lead(
        self,
        campaign_id: str,
        lead_id: str,
        *,
        first_name: str | NotGiven = NOT_GIVEN,
        last_name: str | NotGiven = NOT_GIVEN,
        company: str | NotGiven = NOT_GIVEN,
        custom_fields: Mapping[str, str | None] | NotGiven = NOT_GIVEN,
    ) -> CampaignLead:
        """Change a lead's names, company or custom fields (the email cannot change).

        `custom_fields` is a merge patch: keys given are set, keys given as None are removed,
        other keys stay.
        """
        cid = _segment("campaign_id", campaign_id)
        lid = _segment("lead_id", lead_id)
        fields: dict[str, Any] = {
            "first_name": first_name,
            "last_name": last_name,
            "company": company,
            "custom_fields": dict(custom_fields)
            if not isinstance(custom_fields, NotGiven)
            else NOT_GIVEN,
        }
        if all(v is NOT_GIVEN for v in fields.values()):
            raise InvalidRequestError("update_lead needs at least one field to change")
        body = _build(LeadUpdate, "lead update", fields)
        return self._call(CampaignLead, "PUT", f"campaigns/{cid}/leads/{lid}", json=body.body())

    def delete_leads(self, campaign_id: str, *, lead_ids: Collection[str]) -> DeleteLeadsResult:
        """Delete PENDING leads; the others are kept and listed in ``result.skipped``."""
        cid = _segment("campaign_id", campaign_id)
        if isinstance(lead_ids, str) or not lead_ids:
            raise InvalidRequestError("lead_ids must be a non-empty collection of lead ids")
        ids = []
        for lead_id in lead_ids:
            _segment("lead_ids item", lead_id)
            ids.append(lead_id.strip())
        return self._call(
            DeleteLeadsResult, "DELETE", f"campaigns/{cid}/leads", json={"lead_ids": ids}
        )

    def export_leads(self, campaign_id: str) -> ExportStream:
        """Every lead of the campaign as `ExportRow` values, streamed (one request, no paging).

        Example:
            ```python
            with client.export_leads(campaign_id) as rows:
                for row in rows:
                    print(row.email, row.status)
            ```
        """
        cid = _segment("campaign_id", campaign_id)
        path = f"campaigns/{cid}/leads/export"
        info = RequestInfo("GET", str(self._http.build_request("GET", path).url))
        return ExportStream(lambda: self._send("GET", path, stream=True), request=info)

    # -- sender accounts ------------------------------------------------------------------------

    def create_smtp_inbox(
        self,
        *,
        email_address: str,
        display_name: str,
        smtp_host: str,
        smtp_port: int,
        smtp_username: str,
        smtp_password: str | SecretStr,
        inbox_type: InboxType | str = InboxType.CUSTOM_SMTP,
        imap_host: str | None = None,
        imap_port: int | None = None,
        imap_username: str | None = None,
        imap_password: str | SecretStr | None = None,
        daily_limit: int | None = None,
    ) -> InboxCreated:
        """Register an SMTP sender account (POST /sender-accounts/smtp).

        Raises:
            ConflictError: The address is already registered.
        """
        body = _build(
            SmtpInboxCreate,
            "SMTP inbox",
            {
                "email_address": email_address,
                "display_name": display_name,
                "inbox_type": inbox_type,
                "smtp_host": smtp_host,
                "smtp_port": smtp_port,
                "smtp_username": smtp_username,
                "smtp_password": smtp_password,
                "imap_host": imap_host,
                "imap_port": imap_port,
                "imap_username": imap_username,
                "imap_password": imap_password,
                "daily_limit": daily_limit,
            },
        )
        return self._call(InboxCreated, "POST", "sender-accounts/smtp", json=body.body())

    def list_inboxes(self, *, page: int = 1, limit: int = 20) -> InboxPage:
        """One page of sender accounts."""
        _page_args(page, limit)
        return self._call(
            InboxPage, "GET", "sender-accounts", params=_query(page=page, limit=limit)
        )

    def iter_inboxes(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[Inbox]:
        """Every sender account, page by page."""
        _page_args(1, page_size)

        def fetch(page: int) -> tuple[list[Inbox], Pagination]:
            result = self.list_inboxes(page=page, limit=page_size)
            return result.sender_accounts, result.pagination

        return self._paginate(fetch)

    def get_inbox(self, inbox_id: str) -> Inbox:
        """One sender account (never its credentials)."""
        return self._call(Inbox, "GET", f"sender-accounts/{_segment('inbox_id', inbox_id)}")

    def delete_inbox(self, inbox_id: str) -> OperationResult:
        """Remove a sender account (400 while an ACTIVE campaign uses it)."""
        iid = _segment("inbox_id", inbox_id)
        return self._call(OperationResult, "DELETE", f"sender-accounts/{iid}", fallback={})
