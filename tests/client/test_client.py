"""The client against a mock transport: request shapes, validation, retries, pacing, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.coldsend import (
    APIConnectionError,
    APIResponseValidationError,
    CampaignStatus,
    ColdSendClient,
    InternalServerError,
    InvalidRequestError,
    LeadStatus,
    RateLimitError,
    UploadTooLarge,
    Variant,
)

from ._helpers import API_KEY, Recorder, json_response

MakeClient = Callable[..., ColdSendClient]
CID = "0b6f3c36-1111-4c4e-9d5e-6a2b8f0e0001"

CAMPAIGN = {"campaign_id": CID, "name": "Spring outreach", "status": "DRAFT"}
LEAD = {"lead_id": "l-1", "email": "a@example.com", "status": "PENDING"}


def ok(body: Any = None, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: json_response(status, body if body is not None else {})


# -- request shapes ----------------------------------------------------------------------------


def test_every_request_carries_the_key_header_and_user_agent(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(ok(CAMPAIGN))
    client.get_campaign(CID)
    request = recorder.requests[0]
    assert recorder.keys_seen == [API_KEY]
    assert request.headers["user-agent"].startswith("prefect-coldsend/")
    assert API_KEY not in str(request.url)


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.get_campaign(CID), "GET", f"/campaigns/{CID}", None),
        (lambda c: c.pause_campaign(CID), "POST", f"/campaigns/{CID}/pause", None),
        (lambda c: c.activate_campaign(CID), "POST", f"/campaigns/{CID}/activate", None),
        (lambda c: c.delete_campaign(CID), "DELETE", f"/campaigns/{CID}", None),
        (lambda c: c.launch_campaign(CID), "PUT", f"/campaigns/{CID}", {"launch": True}),
        (
            lambda c: c.launch_campaign(
                CID,
                inbox_ids=["i-1"],
                variants=[
                    {
                        "variant_name": "A",
                        "subject_template": "Hi",
                        "email_content": "Hello there.",
                        "distribution_percent": 100,
                    }
                ],
            ),
            "PUT",
            f"/campaigns/{CID}",
            {
                "inbox_ids": ["i-1"],
                "variants": [
                    {
                        "variant_name": "A",
                        "subject_template": "Hi",
                        "email_content": "Hello there.",
                        "distribution_percent": 100,
                    }
                ],
                "launch": True,
            },
        ),
        (lambda c: c.get_upload_job(CID, "j-1"), "GET", f"/campaigns/{CID}/leads/upload/j-1", None),
        (lambda c: c.get_lead(CID, "l-1"), "GET", f"/campaigns/{CID}/leads/l-1", None),
        (
            lambda c: c.add_lead(
                CID, email="a@example.com", company="Acme", custom_fields={"k": "v"}
            ),
            "POST",
            f"/campaigns/{CID}/leads/manual",
            {"email": "a@example.com", "company": "Acme", "custom_fields": {"k": "v"}},
        ),
        (
            lambda c: c.update_lead(
                CID, "l-1", company="Acme", custom_fields={"drop": None, "k": "v"}
            ),
            "PUT",
            f"/campaigns/{CID}/leads/l-1",
            {"company": "Acme", "custom_fields": {"drop": None, "k": "v"}},
        ),
        (
            lambda c: c.delete_leads(CID, lead_ids=["l-1", "l-2"]),
            "DELETE",
            f"/campaigns/{CID}/leads",
            {"lead_ids": ["l-1", "l-2"]},
        ),
        (lambda c: c.get_inbox("i-1"), "GET", "/sender-accounts/i-1", None),
        (lambda c: c.delete_inbox("i-1"), "DELETE", "/sender-accounts/i-1", None),
    ],
)
def test_endpoint_paths_and_bodies(
    make_client: MakeClient,
    recorder: Recorder,
    call: Callable[[ColdSendClient], object],
    method: str,
    path: str,
    body: object,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if "/upload/" in path:
            return json_response(200, {"job_id": "j-1", "status": "PENDING"})
        if "/leads/l-" in path or path.endswith("/manual"):
            return json_response(200, LEAD)
        return json_response(200, {**CAMPAIGN, "job_id": "j-1", "inbox_id": "i-1"})

    client = make_client(handler)
    call(client)
    request = recorder.requests[0]
    assert request.method == method
    assert request.url.path == "/api/public/v1" + path
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body


def test_create_campaign_sends_only_what_was_given_and_parses_the_answer(
    make_client: MakeClient, recorder: Recorder
) -> None:
    created = {
        **CAMPAIGN,
        "success": True,
        "message": "ok",
        "created_at": "2026-01-02T03:04:05Z",
        "new_field": 1,
    }
    client = make_client(ok(created, 201))
    result = client.create_campaign(
        name="Spring outreach", daily_limit_per_inbox=None, sending_days=[1, 3]
    )
    assert recorder.body() == {
        "name": "Spring outreach",
        "daily_limit_per_inbox": None,
        "sending_days": [1, 3],
    }
    assert result.campaign_id == CID
    assert result.status is CampaignStatus.DRAFT
    assert result.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert result.model_extra == {"new_field": 1}  # unknown fields never break parsing


def test_update_campaign_is_partial(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(ok({**CAMPAIGN, "is_launch_ready": True, "missing_requirements": []}))
    client.update_campaign(
        CID,
        inbox_ids=["i-1"],
        start_date=None,
        variants=[
            Variant(
                variant_name="A",
                subject_template="Hi {{first_name}}",
                email_content="Hello there, friend",
                distribution_percent=60,
            ),
            {
                "variant_name": "B",
                "subject_template": "Hey",
                "email_content": "Hey there, friend",
                "distribution_percent": 40,
            },
        ],
        sequences=[
            {
                "step_number": 2,
                "trigger_type": "NOT_REPLIED",
                "wait_days": 3,
                "variants": [
                    {
                        "variant_name": "A",
                        "subject_template": "Re",
                        "email_content": "Following up here",
                        "distribution_percent": 100,
                    }
                ],
            }
        ],
    )
    body = recorder.body()
    assert set(body) == {"inbox_ids", "start_date", "variants", "sequences"}
    assert body["start_date"] is None
    assert [v["distribution_percent"] for v in body["variants"]] == [60, 40]
    assert body["sequences"][0]["trigger_type"] == "NOT_REPLIED"


def test_launch_returns_missing_requirements(make_client: MakeClient) -> None:
    answer = {**CAMPAIGN, "is_launch_ready": False, "missing_requirements": ["leads", "inboxes"]}
    client = make_client(ok(answer))
    result = client.launch_campaign(CID)
    assert result.status is CampaignStatus.DRAFT
    assert result.missing_requirements == ["leads", "inboxes"]


def test_list_query_parameters(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(ok({"leads": [LEAD], "pagination": {"page": 2, "has_next": False}}))
    page = client.list_leads(CID, page=2, limit=50, status=LeadStatus.REPLIED, search="acme")
    assert dict(recorder.requests[0].url.params) == {
        "page": "2",
        "limit": "50",
        "status": "REPLIED",
        "search": "acme",
    }
    assert page.leads[0].status is LeadStatus.REPLIED or page.leads[0].status is LeadStatus.PENDING


def test_upload_is_multipart_with_mapping_and_duplicate_action(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(ok({"job_id": "j-1", "status": "PENDING", "total_rows": 1}, 202))
    accepted = client.upload_leads_csv(
        CID, data=b"email\na@example.com\n", mapping={"email": "email"}, duplicate_action="update"
    )
    assert accepted.job_id == "j-1"
    request = recorder.requests[0]
    assert request.headers["content-type"].startswith("multipart/form-data")
    content = request.content
    assert b'name="file"; filename="leads.csv"' in content
    assert b"email\na@example.com\n" in content
    assert b'name="mapping"\r\n\r\n{"email":"email"}' in content
    assert b'name="duplicate_action"\r\n\r\nupdate' in content


# -- client-side validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.get_campaign(""), "campaign_id must be a non-empty string"),
        (lambda c: c.get_lead(CID, "  "), "lead_id must be a non-empty string"),
        (lambda c: c.get_upload_job(CID, None), "job_id must be a non-empty string"),
        (lambda c: c.delete_inbox(""), "inbox_id"),
        (
            lambda c: c.create_campaign(name="short"),
            "name: String should have at least 8 characters",
        ),
        (lambda c: c.create_campaign(name="x" * 256), "name: String should have at most 255"),
        (lambda c: c.create_campaign(name="Good name", timezone="Mars/Olympus"), "IANA time zone"),
        (lambda c: c.create_campaign(name="Good name", sending_days=[]), "sending_days"),
        (lambda c: c.create_campaign(name="Good name", sending_days=[8]), "sending_days.0"),
        (
            lambda c: c.create_campaign(
                name="Good name", sending_window_start=17, sending_window_end=9
            ),
            "must be after",
        ),
        (
            lambda c: c.create_campaign(name="Good name", daily_limit_per_inbox=101),
            "daily_limit_per_inbox",
        ),
        (lambda c: c.update_campaign(CID), "at least one field"),
        (lambda c: c.update_campaign(CID, name=None), "name"),
        (lambda c: c.update_campaign(CID, inbox_ids=[]), "inbox_ids"),
        (
            lambda c: c.update_campaign(
                CID,
                variants=[
                    {
                        "variant_name": "A",
                        "subject_template": "s",
                        "email_content": "long enough body",
                        "distribution_percent": 90,
                    }
                ],
            ),
            "sum to 100, got 90",
        ),
        (
            lambda c: c.update_campaign(
                CID,
                variants=[
                    {
                        "variant_name": n,
                        "subject_template": "s",
                        "email_content": "long enough body",
                        "distribution_percent": 20,
                    }
                    for n in "ABCDE"
                ],
            ),
            "variants",
        ),
        (
            lambda c: c.update_campaign(
                CID,
                sequences=[
                    {
                        "step_number": s,
                        "trigger_type": "NOT_OPENED",
                        "wait_days": 20,
                        "variants": [
                            {
                                "variant_name": "A",
                                "subject_template": "s",
                                "email_content": "long enough body",
                                "distribution_percent": 100,
                            }
                        ],
                    }
                    for s in (2, 3, 4)
                ],
            ),
            "60 days in all",
        ),
        (lambda c: c.list_campaigns(limit=101), "limit must be an integer from 1 to 100"),
        (lambda c: c.list_leads(CID, page=0), "page must be an integer >= 1"),
        (lambda c: c.add_lead(CID, email="not-an-email"), "email"),
        (lambda c: c.update_lead(CID, "l-1"), "at least one field"),
        (lambda c: c.delete_leads(CID, lead_ids=[]), "non-empty"),
        (lambda c: c.delete_leads(CID, lead_ids="l-1"), "non-empty collection"),
        (lambda c: c.upload_leads_csv(CID, data="email\n"), "bytes"),
        (
            lambda c: c.upload_leads_csv(CID, data=b"email\n", duplicate_action="merge"),
            "duplicate_action",
        ),
    ],
)
def test_bad_input_fails_before_any_request(
    make_client: MakeClient,
    recorder: Recorder,
    call: Callable[[ColdSendClient], object],
    needle: str,
) -> None:
    client = make_client(ok({}))
    with pytest.raises(InvalidRequestError) as caught:
        call(client)
    assert needle in str(caught.value)
    assert recorder.requests == []


def test_path_parameters_are_encoded_as_one_segment(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(ok(CAMPAIGN))
    client.get_campaign("../sender-accounts")
    assert recorder.requests[0].url.raw_path == b"/api/public/v1/campaigns/..%2Fsender-accounts"


def test_upload_over_50_mb_is_refused_client_side(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(ok({}))
    with pytest.raises(UploadTooLarge, match="at most 52,428,800"):
        client.upload_leads_csv(CID, data=b"x" * (50 * 1024 * 1024 + 1))
    assert recorder.requests == []


def test_unexpected_success_body_is_a_typed_error(make_client: MakeClient) -> None:
    client = make_client(ok({"name": "no id here"}))
    with pytest.raises(APIResponseValidationError, match="campaign_id"):
        client.get_campaign(CID)


# -- retries -------------------------------------------------------------------------------------


def sequence(*steps: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    remaining = list(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def test_5xx_then_success_is_retried_with_backoff(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(
        sequence(
            json_response(503, {"detail": "busy"}),
            json_response(500, {"detail": "oops"}),
            json_response(200, CAMPAIGN),
        )
    )
    assert client.get_campaign(CID).campaign_id == CID
    assert len(recorder.requests) == 3
    assert client.request_count == 3
    assert client.stats.retries == 2
    assert len(recorder.sleeps) == 2
    assert 0 <= recorder.sleeps[0] <= 0.5 and 0 <= recorder.sleeps[1] <= 1.0


def test_retries_stop_at_max_retries(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(sequence(json_response(503, {"detail": "down"})), max_retries=3)
    with pytest.raises(InternalServerError, match="after 4 attempts"):
        client.list_campaigns()
    assert len(recorder.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_never_retried(
    make_client: MakeClient, recorder: Recorder, status: int
) -> None:
    client = make_client(sequence(json_response(status, {"detail": "no"})))
    with pytest.raises(Exception):  # noqa: B017 - the class is checked in test_errors
        client.get_campaign(CID)
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []


def test_429_without_retry_after_waits_for_the_reset(
    make_client: MakeClient, recorder: Recorder
) -> None:
    reset = str(int(recorder.now + 20))
    client = make_client(
        sequence(
            json_response(
                429,
                {"detail": "Rate limit exceeded"},
                {
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset,
                },
            ),
            json_response(200, CAMPAIGN),
        )
    )
    client.get_campaign(CID)
    assert len(recorder.sleeps) == 1
    assert 20 <= recorder.sleeps[0] <= 20.5
    assert client.stats.rate_limited == 1


def test_429_with_retry_after_waits_exactly_that(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(
        sequence(
            json_response(429, {"detail": "slow down"}, {"Retry-After": "3"}),
            json_response(200, CAMPAIGN),
        )
    )
    client.get_campaign(CID)
    assert recorder.sleeps == [3.0]


def test_a_wait_longer_than_max_retry_wait_raises_instead_of_sleeping(
    make_client: MakeClient, recorder: Recorder
) -> None:
    reset = str(int(recorder.now + 1800))  # the hourly budget is gone
    client = make_client(
        sequence(
            json_response(429, {"detail": "Rate limit exceeded"}, {"X-RateLimit-Reset": reset})
        ),
        max_retry_wait=60,
    )
    with pytest.raises(RateLimitError) as caught:
        client.get_campaign(CID)
    assert caught.value.retry_after == pytest.approx(1800)
    assert recorder.sleeps == []


def test_lost_answer_to_a_get_is_retried(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(sequence(httpx.ReadError("reset"), json_response(200, CAMPAIGN)))
    client.get_campaign(CID)
    assert len(recorder.requests) == 2


def test_lost_answer_to_create_campaign_is_not_retried(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(
        sequence(httpx.RemoteProtocolError("server disconnected"), json_response(201, CAMPAIGN))
    )
    with pytest.raises(APIConnectionError):
        client.create_campaign(name="Spring outreach")
    assert len(recorder.requests) == 1


def test_5xx_to_create_campaign_is_not_retried(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(
        sequence(json_response(503, {"detail": "busy"}), json_response(201, CAMPAIGN))
    )
    with pytest.raises(InternalServerError):
        client.create_campaign(name="Spring outreach")
    assert len(recorder.requests) == 1


def test_429_to_create_campaign_is_retried(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(
        sequence(
            json_response(429, {"detail": "slow"}, {"Retry-After": "1"}),
            json_response(201, CAMPAIGN),
        )
    )
    assert client.create_campaign(name="Spring outreach").campaign_id == CID
    assert len(recorder.requests) == 2


def test_connect_failure_of_create_campaign_is_retried(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(sequence(httpx.ConnectError("refused"), json_response(201, CAMPAIGN)))
    assert client.create_campaign(name="Spring outreach").campaign_id == CID
    assert len(recorder.requests) == 2


UPLOADED = {"job_id": "j-1", "status": "PENDING", "total_rows": 1}


def test_lost_answer_to_a_skip_upload_is_resent(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(sequence(httpx.ReadError("reset"), json_response(202, UPLOADED)))
    client.upload_leads_csv(CID, data=b"email\na@example.com\n", duplicate_action="skip")
    assert len(recorder.requests) == 2
    first, second = (r.content.replace(r.content[2:34], b"") for r in recorder.requests)
    assert first == second  # the same file, mapping and duplicate_action again


@pytest.mark.parametrize("action", ["update", "replace"])
def test_lost_answer_to_an_update_or_replace_upload_is_not_resent(
    make_client: MakeClient, recorder: Recorder, action: str
) -> None:
    client = make_client(sequence(httpx.ReadError("reset"), json_response(202, UPLOADED)))
    with pytest.raises(APIConnectionError):
        client.upload_leads_csv(CID, data=b"email\na@example.com\n", duplicate_action=action)  # type: ignore[arg-type]
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(("action", "attempts"), [("skip", 2), ("update", 1), ("replace", 1)])
def test_5xx_to_an_upload_is_retried_only_with_skip(
    make_client: MakeClient, recorder: Recorder, action: str, attempts: int
) -> None:
    client = make_client(
        sequence(json_response(502, {"detail": "bad gateway"}), json_response(202, UPLOADED))
    )
    try:
        client.upload_leads_csv(CID, data=b"email\na@example.com\n", duplicate_action=action)  # type: ignore[arg-type]
    except InternalServerError:
        assert attempts == 1
    assert len(recorder.requests) == attempts


def test_connect_failure_of_a_replace_upload_is_retried(
    make_client: MakeClient, recorder: Recorder
) -> None:
    client = make_client(sequence(httpx.ConnectError("refused"), json_response(202, UPLOADED)))
    client.upload_leads_csv(CID, data=b"email\na@example.com\n", duplicate_action="replace")
    assert len(recorder.requests) == 2


def test_lost_answer_to_launch_is_not_retried(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(sequence(httpx.ReadError("reset"), json_response(200, CAMPAIGN)))
    with pytest.raises(APIConnectionError):
        client.launch_campaign(CID)
    assert len(recorder.requests) == 1


# -- pacing ----------------------------------------------------------------------------------------


def test_pacing_spreads_the_last_requests_of_a_window(
    make_client: MakeClient, recorder: Recorder
) -> None:
    reset = recorder.now + 30
    remaining = iter(range(24, -1, -1))

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            CAMPAIGN,
            {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": str(next(remaining)),
                "X-RateLimit-Reset": str(int(reset)),
            },
        )

    client = make_client(handler)
    for _ in range(8):
        client.get_campaign(CID)
    # Remaining went 24, 23, ..., 17; pacing starts once 20 or fewer are left
    # (the requests after the answers saying 20, 19 and 18).
    assert len(recorder.sleeps) == 3
    assert recorder.sleeps[0] == pytest.approx(30 / 20)
    assert client.stats.paced_seconds == pytest.approx(sum(recorder.sleeps))
    assert recorder.now <= reset


def test_pacing_can_be_turned_off(make_client: MakeClient, recorder: Recorder) -> None:
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(recorder.now + 30)),
    }
    client = make_client(lambda r: json_response(200, CAMPAIGN, headers), pacing=False)
    client.get_campaign(CID)
    client.get_campaign(CID)
    assert recorder.sleeps == []


# -- pagination ------------------------------------------------------------------------------------


def test_iterators_follow_pages_until_has_next_is_false(
    make_client: MakeClient, recorder: Recorder
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        items = [{**CAMPAIGN, "campaign_id": f"c-{page}-{i}"} for i in range(2 if page < 3 else 1)]
        return json_response(
            200, {"campaigns": items, "pagination": {"page": page, "has_next": page < 3}}
        )

    client = make_client(handler)
    ids = [c.campaign_id for c in client.iter_campaigns(status=CampaignStatus.DRAFT, page_size=2)]
    assert ids == ["c-1-0", "c-1-1", "c-2-0", "c-2-1", "c-3-0"]
    assert [r.url.params["page"] for r in recorder.requests] == ["1", "2", "3"]
    assert recorder.requests[0].url.params["status"] == "DRAFT"


def test_iterators_stop_on_an_empty_page(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(ok({"sender_accounts": [], "pagination": {"has_next": True}}))
    assert list(client.iter_inboxes()) == []
    assert len(recorder.requests) == 1


def test_iterators_are_lazy(make_client: MakeClient, recorder: Recorder) -> None:
    client = make_client(ok({"leads": [LEAD], "pagination": {"has_next": True}}))
    leads = client.iter_leads(CID)
    assert recorder.requests == []
    next(iter(leads))
    assert len(recorder.requests) == 1


def test_client_is_a_context_manager() -> None:
    with ColdSendClient(API_KEY, transport=httpx.MockTransport(ok(CAMPAIGN))) as client:
        client.get_campaign(CID)
    with pytest.raises(RuntimeError):
        client.get_campaign(CID)
