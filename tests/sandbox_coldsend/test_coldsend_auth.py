"""Authentication, scopes and rate limits of the ColdSend emulator, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.coldsend import has_scope
from sandbox.coldsend.fixtures import ColdSendControl

from ._helpers import make_campaign

MISSING = {"detail": "API key required. Include your API key in X-API-Key header."}
INVALID = {"detail": "Invalid or revoked API key"}


def test_missing_and_unknown_keys_get_the_documented_401_bodies(
    coldsend_sandbox: ColdSendControl,
) -> None:
    base = coldsend_sandbox.base_url
    missing = httpx.get(f"{base}/campaigns")
    assert (missing.status_code, missing.json()) == (401, MISSING)
    unknown = httpx.get(f"{base}/campaigns", headers={"X-API-Key": "cs_live_nope"})
    assert (unknown.status_code, unknown.json()) == (401, INVALID)
    # A key in the query string is not a key.
    in_url = httpx.get(f"{base}/campaigns", params={"api_key": coldsend_sandbox.admin_key})
    assert in_url.status_code == 401


def test_reset_revokes_issued_keys_but_keeps_the_admin_key(
    coldsend_sandbox: ColdSendControl,
) -> None:
    key = coldsend_sandbox.new_key(["campaigns:read"])
    assert key.startswith("cs_live_")
    assert httpx.get(
        f"{coldsend_sandbox.base_url}/campaigns", headers={"X-API-Key": key}
    ).is_success
    coldsend_sandbox.reset()
    after = httpx.get(f"{coldsend_sandbox.base_url}/campaigns", headers={"X-API-Key": key})
    assert (after.status_code, after.json()) == (401, INVALID)
    admin = httpx.get(
        f"{coldsend_sandbox.base_url}/campaigns",
        headers={"X-API-Key": coldsend_sandbox.admin_key},
    )
    assert admin.status_code == 200


def test_missing_scope_gets_403_with_required_and_granted(
    coldsend_sandbox: ColdSendControl,
) -> None:
    key = coldsend_sandbox.new_key(["campaigns:read", "leads:read"])
    response = httpx.post(
        f"{coldsend_sandbox.base_url}/campaigns",
        headers={"X-API-Key": key},
        json={"name": "Not allowed here"},
    )
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Missing required scopes: campaigns:create",
        "error": "insufficient_scopes",
        "required": ["campaigns:create"],
        "granted": ["campaigns:read", "leads:read"],
    }


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ({"*"}, "leads:delete", True),
        ({"leads:all"}, "leads:delete", True),
        ({"leads:all"}, "campaigns:read", False),
        ({"campaigns:write"}, "campaigns:create", True),
        ({"campaigns:write"}, "campaigns:pause", True),
        ({"campaigns:write"}, "campaigns:activate", True),
        ({"campaigns:write"}, "campaigns:read", False),
        ({"sender_accounts:write"}, "sender_accounts:delete", True),
        ({"leads:write"}, "leads:create", False),  # legacy :write exists only for two resources
        ({"leads:read"}, "leads:create", False),
        ({"leads:create"}, "leads:create", True),
    ],
)
def test_scope_rules(granted: set[str], required: str, allowed: bool) -> None:
    assert has_scope(frozenset(granted), required) is allowed


def test_scopes_over_http_resource_all_and_legacy_write(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    base = coldsend_sandbox.base_url
    legacy = {"X-API-Key": coldsend_sandbox.new_key(["campaigns:write"])}
    created = httpx.post(f"{base}/campaigns", headers=legacy, json={"name": "Legacy key campaign"})
    assert created.status_code == 201
    # :write does not include :read.
    assert httpx.get(f"{base}/campaigns", headers=legacy).status_code == 403
    every = {"X-API-Key": coldsend_sandbox.new_key(["campaigns:all"])}
    assert httpx.get(f"{base}/campaigns", headers=every).status_code == 200
    assert httpx.get(f"{base}/sender-accounts", headers=every).status_code == 403


def test_rate_limit_per_minute_429_body_headers_and_no_retry_after_by_default(
    coldsend_sandbox: ColdSendControl,
) -> None:
    coldsend_sandbox.set_limits(per_minute=3, per_hour=1000)
    key = coldsend_sandbox.new_key(["campaigns:read"])
    with httpx.Client(base_url=coldsend_sandbox.base_url, headers={"X-API-Key": key}) as client:
        remaining = [client.get("/campaigns").headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        limited = client.get("/campaigns")
    now = time.time()
    assert limited.status_code == 429
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert reset % 60 == 0 and now < reset <= now + 61
    assert "Retry-After" not in limited.headers
    wait = limited.json()["detail"]
    assert wait.startswith("Rate limit exceeded. Retry after ") and wait.endswith(" seconds.")
    assert 1 <= int(wait.split()[-2]) <= 61
    # The control surface is never limited; the admin key has its own pool.
    assert coldsend_sandbox.stats()["total"] == 4
    admin = httpx.get(
        f"{coldsend_sandbox.base_url}/campaigns",
        headers={"X-API-Key": coldsend_sandbox.admin_key},
    )
    assert admin.status_code == 200


def test_rate_limit_counts_rejected_requests_and_reports_the_hour_window(
    coldsend_sandbox: ColdSendControl,
) -> None:
    coldsend_sandbox.set_limits(per_minute=1000, per_hour=4, retry_after_header=True)
    headers = {"X-API-Key": coldsend_sandbox.new_key(["*"])}
    url = f"{coldsend_sandbox.base_url}/campaigns/does-not-exist"
    statuses = [httpx.get(url, headers=headers).status_code for _ in range(6)]
    # 404s count like any authenticated request; the hour pool is then exhausted.
    assert statuses == [404, 404, 404, 404, 429, 429]
    limited = httpx.get(url, headers=headers)
    assert limited.headers["X-RateLimit-Limit"] == "4"
    assert int(limited.headers["X-RateLimit-Reset"]) % 3600 == 0
    assert int(limited.headers["Retry-After"]) >= 1
    # Raising the limit lets it through: the 7 requests so far were all counted.
    coldsend_sandbox.set_limits(per_hour=8)
    assert httpx.get(url, headers=headers).status_code == 404
    assert httpx.get(url, headers=headers).status_code == 429


def test_rate_limit_headers_on_every_api_response(
    coldsend_sandbox: ColdSendControl, api: httpx.Client
) -> None:
    campaign_id = make_campaign(api)
    responses = [
        api.get(f"/campaigns/{campaign_id}"),
        api.get("/campaigns/missing"),
        api.post("/campaigns", json={"name": "short"}),
        api.get(f"/campaigns/{campaign_id}/leads/export"),
        httpx.get(f"{coldsend_sandbox.base_url}/campaigns"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 422, 200, 401]
    for response in responses:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            response.headers
        )


def test_limits_and_jobs_settings_round_trip_and_reset_to_defaults(
    coldsend_sandbox: ColdSendControl,
) -> None:
    http = httpx.Client(base_url=f"{coldsend_sandbox.root_url}/_sandbox")
    assert coldsend_sandbox.set_limits(per_minute=7)["per_minute"] == 7
    assert http.get("/limits").json()["per_minute"] == 7
    assert coldsend_sandbox.set_jobs(rows_per_second=5, fail_rate=0.5)["fail_rate"] == 0.5
    assert http.put("/jobs", json={"fail_rate": 2}).status_code == 422
    coldsend_sandbox.reset()
    assert http.get("/limits").json() == {
        "per_minute": 100,
        "per_hour": 1000,
        "retry_after_header": False,
    }
    assert http.get("/jobs").json()["fail_rate"] == 0.0
    http.close()
