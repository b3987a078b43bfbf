"""Exceptions raised by the ColdSend client, one class per failure.

The tree::

    ColdSendError
     ├── InvalidRequestError (also ValueError)  bad input refused before any request is sent
     │    └── UploadTooLarge                    a CSV over 10,000 rows or 50 MB, refused client-side
     ├── APIConnectionError                     no response arrived (connect, read, write failure)
     │    └── APITimeoutError                   ... because a timeout phase ran out
     ├── APIStatusError                         a response arrived with status >= 300
     │    ├── BadRequestError              400  business rule broken (e.g. wrong campaign state)
     │    ├── AuthenticationError          401  key missing, unknown or revoked
     │    ├── PermissionDeniedError        403  key lacks a scope (`required`, `granted`, `missing`)
     │    ├── NotFoundError                404
     │    ├── ConflictError                409  already exists
     │    ├── UnprocessableEntityError     422  request schema invalid (`field_errors`)
     │    ├── RateLimitError               429  (`retry_after` seconds)
     │    └── InternalServerError          5xx
     ├── APIResponseValidationError             a 2xx answer whose body does not parse as documented
     ├── ExportFormatError                      the lead export CSV is not what the contract says
     ├── UploadJobFailed                        an upload job ended FAILED
     ├── UploadJobTimedOut                      an upload job did not finish before the deadline
     └── UploadIncomplete                       a COMPLETED job whose counts do not account for every row

"Never got a response" (`APIConnectionError`) and "got an error response" (`APIStatusError`)
are kept apart because callers treat them differently: after a lost response the request may
or may not have taken effect. `APIStatusError` keeps the parsed body, the response and the
request as method + URL; the API key is never stored in any of them nor in any message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from connectors.retry import header_reset_wait, header_retry_after

if TYPE_CHECKING:
    from connectors.coldsend.models import UploadJob, UploadJobStatus

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ColdSendError",
    "ConflictError",
    "ExportFormatError",
    "FieldError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInfo",
    "UnprocessableEntityError",
    "UploadIncomplete",
    "UploadJobFailed",
    "UploadJobTimedOut",
    "UploadTooLarge",
    "error_for_response",
]


class ColdSendError(Exception):
    """Base class of every error this package raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword arguments, which Exception's default pickling drops; Prefect
        # and multiprocessing pickle exceptions to move them between processes.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[ColdSendError], args: tuple[Any, ...], state: dict[str, Any]
) -> ColdSendError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidRequestError(ColdSendError, ValueError):
    """Input the API would refuse, caught before any request is sent.

    Attributes:
        errors: One ``{"loc": tuple, "msg": str, "type": str}`` per problem (never the input value).
    """

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = [dict(e) for e in errors]


class UploadTooLarge(InvalidRequestError):
    """A CSV file over the upload limits (10,000 data rows, 50 MB), or one row too big for any file."""


class APIResponseValidationError(ColdSendError):
    """A successful response whose body is not the JSON the contract documents.

    Attributes:
        request: Method and URL of the request.
        status_code: The (2xx) status.
    """

    def __init__(self, message: str, *, request: RequestInfo, status_code: int) -> None:
        super().__init__(message)
        self.request = request
        self.status_code = status_code


class ExportFormatError(ColdSendError):
    """The lead export is not a CSV with the columns the contract promises."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request an error belongs to: method and URL only (the API key travels in a header)."""

    method: str
    url: str

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


class APIConnectionError(ColdSendError):
    """No response arrived: the connection failed, broke, or a timeout ran out.

    Attributes:
        request: Method and URL of the request.
    """

    def __init__(self, message: str, *, request: RequestInfo) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """A connect, write, read or pool timeout ran out before a response arrived."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a 422 body: where (`loc`), what (`msg`) and its kind (`type`)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.loc if p != "body") or "request"
        return f"{where}: {self.msg}"


class APIStatusError(ColdSendError):
    """The API answered with an error status.

    Attributes:
        status_code: The HTTP status.
        body: The parsed JSON body, or the text when it is not JSON (None when empty).
        detail: The body's ``detail`` when it is a string, else a one-line summary.
        request: Method and URL of the request (never headers, so never the key).
        response: The `httpx.Response` (its request carries no API key either).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: object,
        request: RequestInfo,
        response: httpx.Response,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request = request
        self.response = response

    @property
    def detail(self) -> str:
        """The body's ``detail`` as text ("" when absent); 422 field lists are stringified."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else self.body
        if isinstance(detail, str):
            return detail
        return "" if detail is None else str(detail)


class BadRequestError(APIStatusError):
    """400: a business rule was broken, e.g. an action in the wrong campaign state."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks a scope.

    Attributes:
        required: Scopes the endpoint needs.
        granted: Scopes the key has.
        missing: Scopes to add to the key.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        body = self.body if isinstance(self.body, dict) else {}
        self.required: list[str] = _str_list(body.get("required"))
        self.granted: list[str] = _str_list(body.get("granted"))
        self.missing: list[str] = _str_list(body.get("missing")) or _missing_scopes(
            self.detail, self.required, self.granted
        )


class NotFoundError(APIStatusError):
    """404: the campaign, lead, job or inbox does not exist (or is not visible to this key)."""


class ConflictError(APIStatusError):
    """409: the thing already exists (an email already in the campaign, an inbox registered)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request did not match the API's schema.

    Attributes:
        field_errors: One `FieldError` per problem the server reported.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field_errors = _field_errors(self.body)


class RateLimitError(APIStatusError):
    """429: over 100 requests a minute or 1,000 an hour for this key.

    Attributes:
        retry_after: Seconds until the server accepts requests again, from ``Retry-After``
            or ``X-RateLimit-Reset``; None when the response gave neither.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the service failed; retried by the client before this is raised."""


class UploadJobFailed(ColdSendError):
    """An upload job ended in status FAILED.

    Attributes:
        campaign_id: The campaign.
        job_id: The job.
        job: The last job state the API returned.
    """

    def __init__(self, campaign_id: str, job_id: str, job: UploadJob) -> None:
        errors = f"; first errors: {_first_errors(job)}" if job.errors else ""
        super().__init__(
            f"upload job {job_id} of campaign {campaign_id} failed after processing "
            f"{job.processed_count or 0} of {job.total_count or 0} rows{errors}"
        )
        self.campaign_id = campaign_id
        self.job_id = job_id
        self.job = job


class UploadJobTimedOut(ColdSendError):
    """An upload job was not finished when the caller's wall-clock deadline passed.

    Attributes:
        campaign_id: The campaign.
        job_id: The job, which may still finish later.
        timeout: The deadline in seconds.
        last_status: The last status seen, None if no poll succeeded.
    """

    def __init__(
        self,
        campaign_id: str,
        job_id: str,
        *,
        timeout: float,
        last_status: UploadJobStatus | None,
        last_error: BaseException | None = None,
    ) -> None:
        seen = f"last status {last_status.value}" if last_status else "no successful poll"
        if last_error is not None and last_status is None:
            seen += f" (last error: {type(last_error).__name__})"
        super().__init__(
            f"upload job {job_id} of campaign {campaign_id} did not finish within {timeout:g} s ({seen})"
        )
        self.campaign_id = campaign_id
        self.job_id = job_id
        self.timeout = timeout
        self.last_status = last_status


class UploadIncomplete(ColdSendError):
    """A job reported COMPLETED but its counts do not account for every row of the file sent.

    Attributes:
        campaign_id: The campaign.
        job_id: The job.
        rows_sent: Data rows in the file uploaded.
        job: The job as last returned.
    """

    def __init__(
        self, campaign_id: str, job_id: str, *, rows_sent: int, job: UploadJob, reason: str
    ) -> None:
        super().__init__(
            f"upload job {job_id} of campaign {campaign_id} is COMPLETED but incomplete: {reason} "
            f"(rows sent {rows_sent}, total {job.total_count}, processed {job.processed_count}, "
            f"success {job.success_count}, duplicate {job.duplicate_count}, error {job.error_count})"
        )
        self.campaign_id = campaign_id
        self.job_id = job_id
        self.rows_sent = rows_sent
        self.job = job


# ---------------------------------------------------------------------------------------------
# Status -> class, and building an error from a response
# ---------------------------------------------------------------------------------------------

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _class_for(status: int) -> type[APIStatusError]:
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


def _str_list(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def _missing_scopes(detail: str, required: list[str], granted: list[str]) -> list[str]:
    prefix = "missing required scopes:"
    if detail.lower().startswith(prefix):
        named = [s.strip() for s in detail[len(prefix) :].split(",") if s.strip()]
        if named:
            return named
    have = set(granted)
    if "*" in have:
        return []
    return [
        s
        for s in required
        if s not in have and f"{s.partition(':')[0]}:all" not in have and s != "*"
    ]


def _field_errors(body: object) -> list[FieldError]:
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return []
    out: list[FieldError] = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        # `input` is deliberately not kept: the server may echo a submitted password there.
        out.append(
            FieldError(
                loc=tuple(p if isinstance(p, int) else str(p) for p in loc)
                if isinstance(loc, list | tuple)
                else (),
                msg=str(item.get("msg", "")),
                type=str(item.get("type", "")),
            )
        )
    return out


def _first_errors(job: UploadJob, limit: int = 3) -> str:
    shown = [f"row {e.row}: {e.error}" for e in job.errors[:limit]]
    more = len(job.errors) - limit
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _parse_body(response: httpx.Response) -> object:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def error_for_response(
    response: httpx.Response, *, request: RequestInfo, now: float | None = None
) -> APIStatusError:
    """The `APIStatusError` subclass for `response`, with its parsed body and a readable message.

    Args:
        response: A response with an error status; its body must have been read.
        request: Method and URL of the request, for the message.
        now: Current Unix time, for `RateLimitError.retry_after` (defaults to the clock).
    """
    status = response.status_code
    body = _parse_body(response)
    cls = _class_for(status)
    detail_value = body.get("detail") if isinstance(body, dict) else body
    if cls is UnprocessableEntityError:
        problems = _field_errors(body)
        summary = "; ".join(str(p) for p in problems) or str(detail_value or "")
    elif isinstance(detail_value, str):
        summary = detail_value
    else:
        summary = "" if detail_value is None else str(detail_value)
    # Keep messages one screen long even if a proxy answers with a whole HTML page.
    if len(summary) > 500:
        summary = summary[:500] + "..."
    reason = response.reason_phrase or ""
    message = f"{status} {reason} from {request}".replace("  ", " ")
    if summary:
        message += f": {summary}"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "body": body,
        "request": request,
        "response": response,
    }
    if cls is RateLimitError:
        at = time.time() if now is None else now
        retry_after = header_retry_after(response.headers, now=at)
        if retry_after is None:
            retry_after = header_reset_wait(response.headers, now=at)
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
