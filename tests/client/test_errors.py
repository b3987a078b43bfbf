"""Error mapping: one class per status, parsed bodies, retry_after, and no secret anywhere."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from connectors.coldsend import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ColdSendClient,
    ColdSendError,
    ConflictError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

from ._helpers import API_KEY, Recorder, json_response

MakeClient = Callable[..., ColdSendClient]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (418, APIStatusError),
        (301, APIStatusError),
    ],
)
def test_status_maps_to_one_class_with_body_request_and_response(
    make_client: MakeClient, status: int, cls: type[APIStatusError]
) -> None:
    client = make_client(
        lambda r: json_response(status, {"detail": "Campaign is ACTIVE"}), max_retries=0
    )
    with pytest.raises(cls) as caught:
        client.get_campaign("c-1")
    err = caught.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.body == {"detail": "Campaign is ACTIVE"}
    assert err.detail == "Campaign is ACTIVE"
    assert err.request.method == "GET"
    assert err.request.url.endswith("/api/public/v1/campaigns/c-1")
    assert err.response.status_code == status
    assert str(err).startswith(f"{status} ")
    assert "GET https://api.coldsend.test/api/public/v1/campaigns/c-1" in str(err)
    assert "Campaign is ACTIVE" in str(err)


def test_permission_denied_names_the_missing_scope(make_client: MakeClient) -> None:
    body = {
        "detail": "Missing required scopes: leads:create",
        "error": "insufficient_scopes",
        "required": ["leads:create"],
        "granted": ["campaigns:all", "leads:read"],
    }
    client = make_client(lambda r: json_response(403, body))
    with pytest.raises(PermissionDeniedError) as caught:
        client.add_lead("c-1", email="a@example.com")
    assert caught.value.required == ["leads:create"]
    assert caught.value.granted == ["campaigns:all", "leads:read"]
    assert caught.value.missing == ["leads:create"]
    assert "leads:create" in str(caught.value)


def test_permission_denied_computes_missing_without_a_detail_list(make_client: MakeClient) -> None:
    body = {
        "detail": "Forbidden",
        "required": ["leads:read", "campaigns:read"],
        "granted": ["leads:all"],
    }
    client = make_client(lambda r: json_response(403, body))
    with pytest.raises(PermissionDeniedError) as caught:
        client.get_campaign("c-1")
    assert caught.value.missing == ["campaigns:read"]


def test_unprocessable_entity_lists_field_errors_without_echoing_input(
    make_client: MakeClient,
) -> None:
    body = {
        "detail": [
            {
                "loc": ["body", "smtp_port"],
                "msg": "Input should be a valid integer",
                "type": "int_parsing",
                "input": "x",
            },
            {
                "loc": ["body", "smtp_password"],
                "msg": "too short",
                "type": "string_too_short",
                "input": "hunter2-secret",
            },
        ]
    }
    client = make_client(lambda r: json_response(422, body))
    with pytest.raises(UnprocessableEntityError) as caught:
        client.get_inbox("i-1")
    err = caught.value
    assert [(e.loc, e.type) for e in err.field_errors] == [
        (("body", "smtp_port"), "int_parsing"),
        (("body", "smtp_password"), "string_too_short"),
    ]
    assert "smtp_port: Input should be a valid integer" in str(err)
    assert "hunter2-secret" not in str(err)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "17"}, 17.0),
        ({"X-RateLimit-Reset": str(1_800_000_000 + 42)}, 42.0),
        ({}, None),
    ],
)
def test_rate_limit_error_says_when_to_come_back(
    make_client: MakeClient, headers: dict[str, str], expected: float | None
) -> None:
    client = make_client(
        lambda r: json_response(429, {"detail": "Rate limit exceeded."}, headers), max_retries=0
    )
    with pytest.raises(RateLimitError) as caught:
        client.list_campaigns()
    assert caught.value.retry_after == expected


def test_non_json_error_body_is_kept_as_text(make_client: MakeClient) -> None:
    client = make_client(
        lambda r: httpx.Response(502, text="<html>" + "Bad gateway " * 100 + "</html>"),
        max_retries=0,
    )
    with pytest.raises(InternalServerError) as caught:
        client.list_inboxes()
    assert isinstance(caught.value.body, str)
    assert len(str(caught.value)) < 700  # a proxy's HTML page is cut short in the message


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
        (httpx.RemoteProtocolError("server disconnected"), APIConnectionError),
    ],
)
def test_transport_failures_are_connection_errors_after_retries(
    make_client: MakeClient, recorder: Recorder, exc: Exception, cls: type[APIConnectionError]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    client = make_client(fail, max_retries=2)
    with pytest.raises(cls) as caught:
        client.get_campaign("c-1")
    assert type(caught.value) is cls
    assert not isinstance(caught.value, APIStatusError)
    assert caught.value.request.method == "GET"
    assert "after 3 attempts" in str(caught.value)
    assert len(recorder.requests) == 3
    assert isinstance(caught.value.__cause__, httpx.TransportError)


def _everything_printable(err: BaseException) -> str:
    parts = [str(err), repr(err), "".join(traceback.format_exception(err))]
    for name in ("request", "body", "detail"):
        parts.append(repr(getattr(err, name, "")))
    response = getattr(err, "response", None)
    if response is not None:
        parts.append(repr(dict(response.request.headers)))
        parts.append(repr(response.request))
    cause = err.__cause__
    request = getattr(cause, "_request", None)
    if request is not None:
        parts.append(repr(dict(request.headers)))
    return "\n".join(parts)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500])
def test_api_key_is_in_no_error_message_repr_or_stored_request(
    make_client: MakeClient, recorder: Recorder, status: int
) -> None:
    client = make_client(lambda r: json_response(status, {"detail": "nope"}), max_retries=0)
    with pytest.raises(APIStatusError) as caught:
        client.get_lead("c-1", "l-1")
    assert recorder.keys_seen == [API_KEY]  # it was sent...
    assert API_KEY not in _everything_printable(caught.value)  # ...and kept nowhere
    assert "x-api-key" not in caught.value.response.request.headers
    assert API_KEY not in repr(client)
    assert API_KEY not in repr(client._http.auth) + repr(client._http.headers)


def test_api_key_is_not_kept_on_connection_errors(make_client: MakeClient) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    client = make_client(fail, max_retries=1)
    with pytest.raises(APIConnectionError) as caught:
        client.list_campaigns()
    assert API_KEY not in _everything_printable(caught.value)
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ReadError)
    assert "x-api-key" not in cause.request.headers


def test_api_key_is_not_kept_on_successful_responses(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(lambda r: json_response(200, {"inbox_id": "i-1"}))
    client.get_inbox("i-1")
    assert recorder.keys_seen == [API_KEY]
    assert "x-api-key" not in recorder.requests[0].headers


def test_secret_str_key_works_and_bad_keys_are_refused_without_echo() -> None:
    with ColdSendClient(
        SecretStr(API_KEY), transport=httpx.MockTransport(lambda r: json_response(200, {}))
    ) as client:
        assert API_KEY not in repr(client)
    for bad in ("", "   ", "cs_live_abc\r\nX-Evil: 1", " cs_live_abc"):
        with pytest.raises(InvalidRequestError) as caught:
            ColdSendClient(bad)
        assert bad.strip() == "" or bad.strip() not in str(caught.value)


def test_smtp_password_is_in_no_validation_message(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(lambda r: json_response(201, {}))
    with pytest.raises(InvalidRequestError) as caught:
        client.create_smtp_inbox(
            email_address="sender@example.com",
            display_name="Sender",
            smtp_host="smtp.example.com",
            smtp_port=70000,
            smtp_username="sender",
            smtp_password="pa55-VERY-secret",
            imap_password="imap-VERY-secret",
        )
    text = str(caught.value) + repr(caught.value) + repr(caught.value.errors)
    assert "smtp_port" in text
    assert "VERY-secret" not in text
    assert recorder.requests == []


def test_exception_tree() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(InternalServerError, APIStatusError)
    assert issubclass(InvalidRequestError, ValueError)
    for cls in (APIConnectionError, APIStatusError, InvalidRequestError):
        assert issubclass(cls, ColdSendError)


def test_errors_survive_pickling(make_client: MakeClient) -> None:
    # Prefect and multiprocessing move exceptions between processes by pickling them.
    client = make_client(
        lambda r: json_response(
            403,
            {
                "detail": "Missing required scopes: leads:read",
                "required": ["leads:read"],
                "granted": [],
            },
        )
    )
    with pytest.raises(PermissionDeniedError) as caught:
        client.get_lead("c-1", "l-1")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert type(copy) is PermissionDeniedError
    assert (str(copy), copy.status_code, copy.missing, copy.request) == (
        str(caught.value),
        403,
        ["leads:read"],
        caught.value.request,
    )
    assert API_KEY.encode() not in pickle.dumps(caught.value)
    timeout = pickle.loads(pickle.dumps(APITimeoutError("slow", request=caught.value.request)))  # noqa: S301
    assert isinstance(timeout, APITimeoutError) and timeout.request == caught.value.request
