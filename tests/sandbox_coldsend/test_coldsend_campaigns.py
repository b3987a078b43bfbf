"""Campaigns and sender accounts: validation, launch readiness, state rules and pagination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox._server import serving
from sandbox.coldsend import create_app

from ._helpers import VARIANT, import_leads, launch, make_campaign, make_inbox


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for item in detail:
        assert set(item) == {"loc", "msg", "type"}
    return [item["loc"] for item in detail]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "short"}, ["body", "name"]),
        ({"name": "x" * 256}, ["body", "name"]),
        ({}, ["body", "name"]),
        ({"name": "Valid name", "sending_days": []}, ["body", "sending_days"]),
        ({"name": "Valid name", "sending_days": [0]}, ["body", "sending_days", 0]),
        (
            {"name": "Valid name", "sending_days": [1, 2, 3, 4, 5, 6, 7, 1]},
            ["body", "sending_days"],
        ),
        ({"name": "Valid name", "sending_window_start": 24}, ["body", "sending_window_start"]),
        ({"name": "Valid name", "sending_window_end": 0}, ["body", "sending_window_end"]),
        (
            {"name": "Valid name", "sending_window_end_minute": 60},
            ["body", "sending_window_end_minute"],
        ),
        ({"name": "Valid name", "sending_window_start": 17, "sending_window_end": 9}, ["body"]),
        ({"name": "Valid name", "daily_limit_per_inbox": 101}, ["body", "daily_limit_per_inbox"]),
        ({"name": "Valid name", "timezone": "Mars/Olympus"}, ["body", "timezone"]),
    ],
)
def test_create_campaign_validation(
    api: httpx.Client, body: dict[str, Any], loc: list[Any]
) -> None:
    assert loc in _locs(api.post("/campaigns", json=body))


def test_create_and_get_campaign_with_defaults(api: httpx.Client) -> None:
    created = api.post("/campaigns", json={"name": "Q3 outreach", "enable_tracking": True})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "DRAFT" and body["name"] == "Q3 outreach"
    assert body["created_at"].endswith("Z")
    campaign = api.get(f"/campaigns/{body['campaign_id']}").json()
    assert campaign["timezone"] == "America/New_York"
    assert campaign["sending_days"] == [1, 2, 3, 4, 5]
    assert (campaign["sending_window_start"], campaign["sending_window_end"]) == (9, 17)
    assert campaign["enable_tracking"] is True and campaign["enable_unsubscribe"] is True
    assert campaign["total_leads"] == 0 and campaign["inbox_ids"] == []


@pytest.mark.parametrize(
    ("update", "loc"),
    [
        ({"variants": [{**VARIANT, "distribution_percent": 60}]}, ["body", "variants"]),
        ({"variants": [VARIANT, {**VARIANT, "distribution_percent": 0}]}, ["body", "variants"]),
        ({"variants": [{**VARIANT, "variant_name": c} for c in "ABCDE"]}, ["body", "variants"]),
        (
            {"variants": [{**VARIANT, "email_content": "too short"}]},
            ["body", "variants", 0, "email_content"],
        ),
        (
            {"variants": [{**VARIANT, "subject_template": "s" * 501}]},
            ["body", "variants", 0, "subject_template"],
        ),
        (
            {"sequences": [{"step_number": 5, "trigger_type": "NOT_OPENED", "wait_days": 3}]},
            ["body", "sequences", 0, "step_number"],
        ),
        (
            {"sequences": [{"step_number": 2, "trigger_type": "SOMETIMES", "wait_days": 3}]},
            ["body", "sequences", 0, "trigger_type"],
        ),
        (
            {"sequences": [{"step_number": 2, "trigger_type": "NOT_OPENED", "wait_days": 31}]},
            ["body", "sequences", 0, "wait_days"],
        ),
        (
            {
                "sequences": [
                    {"step_number": n, "trigger_type": "NOT_REPLIED", "wait_days": 16}
                    for n in (2, 3, 4)
                ]
            },
            ["body", "sequences"],
        ),
        ({"inbox_ids": []}, ["body", "inbox_ids"]),
        ({"sending_window_end": 8}, ["body"]),
        ({"name": None}, ["body", "name"]),
    ],
)
def test_update_campaign_validation(
    api: httpx.Client, update: dict[str, Any], loc: list[Any]
) -> None:
    campaign_id = make_campaign(api)
    assert loc in _locs(api.put(f"/campaigns/{campaign_id}", json=update))
    # Nothing changed.
    assert api.get(f"/campaigns/{campaign_id}").json()["sending_window_end"] == 17


def test_partial_update_changes_only_sent_fields(api: httpx.Client) -> None:
    campaign_id = make_campaign(api, sending_window_start=8)
    sequences = [
        {"step_number": 2, "trigger_type": "NOT_OPENED", "wait_days": 30, "variants": [VARIANT]},
        {"step_number": 3, "trigger_type": "OPENED_BUT_NOT_REPLIED", "wait_days": 15},
    ]
    response = api.put(
        f"/campaigns/{campaign_id}",
        json={"name": "Renamed campaign", "sequences": sequences, "lead_mapping": {"email": "E"}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed campaign" and body["status"] == "DRAFT"
    assert body["is_launch_ready"] is False
    assert body["missing_requirements"] == ["leads", "inboxes", "variants"]
    campaign = api.get(f"/campaigns/{campaign_id}").json()
    assert campaign["sending_window_start"] == 8
    assert [s["step_number"] for s in campaign["sequences"]] == [2, 3]
    assert campaign["lead_mapping"] == {"email": "E"}


def test_unknown_inbox_is_refused_with_its_id(api: httpx.Client) -> None:
    campaign_id = make_campaign(api)
    ghost = "00000000-0000-4000-8000-000000000000"
    response = api.put(f"/campaigns/{campaign_id}", json={"inbox_ids": [ghost]})
    assert response.status_code == 400 and ghost in response.json()["detail"]


def test_launch_reports_missing_requirements_then_launches(api: httpx.Client) -> None:
    campaign_id = make_campaign(api)
    first = api.put(f"/campaigns/{campaign_id}", json={"launch": True})
    assert first.status_code == 200
    assert first.json()["status"] == "DRAFT"
    assert first.json()["missing_requirements"] == ["leads", "inboxes", "variants"]
    inbox = make_inbox(api)
    second = api.put(
        f"/campaigns/{campaign_id}",
        json={"inbox_ids": [inbox], "variants": [VARIANT], "launch": True},
    )
    assert second.json()["missing_requirements"] == ["leads"]
    assert second.json()["status"] == "DRAFT"
    import_leads(api, campaign_id, ["a@example.com"])
    third = api.put(f"/campaigns/{campaign_id}", json={"launch": True})
    assert third.json()["status"] == "ACTIVE" and third.json()["is_launch_ready"] is True
    campaign = api.get(f"/campaigns/{campaign_id}").json()
    assert campaign["status"] == "ACTIVE" and campaign["launched_at"] is not None


def test_state_rules_name_the_current_state(api: httpx.Client) -> None:
    campaign_id = make_campaign(api)
    paused_draft = api.post(f"/campaigns/{campaign_id}/pause")
    assert paused_draft.status_code == 400 and "DRAFT" in paused_draft.json()["detail"]
    assert api.post(f"/campaigns/{campaign_id}/activate").status_code == 400
    launch(api, campaign_id, ["a@example.com"])
    for response in (
        api.put(f"/campaigns/{campaign_id}", json={"name": "Edited while active"}),
        api.delete(f"/campaigns/{campaign_id}"),
        api.post(f"/campaigns/{campaign_id}/activate"),
    ):
        assert response.status_code == 400 and "ACTIVE" in response.json()["detail"]
    paused = api.post(f"/campaigns/{campaign_id}/pause")
    assert paused.json() == {
        "success": True,
        "message": "Campaign paused",
        "campaign_id": campaign_id,
        "status": "PAUSED",
    }
    assert (
        api.put(f"/campaigns/{campaign_id}", json={"name": "Edited while paused"}).status_code
        == 200
    )
    relaunch = api.put(f"/campaigns/{campaign_id}", json={"launch": True})
    assert relaunch.status_code == 400 and "PAUSED" in relaunch.json()["detail"]
    assert api.post(f"/campaigns/{campaign_id}/activate").json()["status"] == "ACTIVE"
    assert api.post(f"/campaigns/{campaign_id}/pause").status_code == 200
    deleted = api.delete(f"/campaigns/{campaign_id}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "DELETED"
    gone = api.get(f"/campaigns/{campaign_id}")
    assert (gone.status_code, gone.json()) == (404, {"detail": "Campaign not found"})
    assert api.get(f"/campaigns/{campaign_id}/leads").status_code == 404


def test_list_campaigns_pagination_filter_and_search(api: httpx.Client) -> None:
    empty = api.get("/campaigns").json()
    assert empty["campaigns"] == []
    assert empty["pagination"] == {
        "page": 1,
        "limit": 20,
        "total": 0,
        "pages": 0,
        "has_next": False,
        "has_prev": False,
    }
    ids = [make_campaign(api, f"Campaign number {i}") for i in range(5)]
    make_campaign(api, "Something ELSE entirely")
    page2 = api.get("/campaigns", params={"limit": 2, "page": 2, "search": "NUMBER"}).json()
    assert page2["pagination"] == {
        "page": 2,
        "limit": 2,
        "total": 5,
        "pages": 3,
        "has_next": True,
        "has_prev": True,
    }
    assert len(page2["campaigns"]) == 2
    beyond = api.get("/campaigns", params={"limit": 2, "page": 9}).json()
    assert beyond["campaigns"] == [] and beyond["pagination"]["total"] == 6
    launch(api, ids[0], ["x@example.com"])
    for param in ("status", "status_filter"):
        active = api.get("/campaigns", params={param: "ACTIVE"}).json()["campaigns"]
        assert [c["campaign_id"] for c in active] == [ids[0]]
        assert active[0]["total_leads"] == 1
    assert api.get("/campaigns", params={"status": "BOGUS"}).status_code == 422
    for bad in ({"limit": 0}, {"limit": 101}, {"page": 0}):
        assert api.get("/campaigns", params=bad).status_code == 422


def test_sender_accounts_lifecycle_never_returns_credentials(api: httpx.Client) -> None:
    inbox_id = make_inbox(api, "Sales@Example.com")
    duplicate = api.post(
        "/sender-accounts/smtp",
        json={
            "email_address": "sales@example.com ",
            "smtp_host": "h",
            "smtp_port": 25,
            "smtp_username": "u",
            "smtp_password": "p",
        },
    )
    assert duplicate.status_code == 409
    listed = api.get("/sender-accounts")
    assert "hunter2-secret" not in listed.text and "smtp_username" not in listed.text
    assert listed.json()["pagination"]["total"] == 1
    one = api.get(f"/sender-accounts/{inbox_id}").json()
    assert one["email_address"] == "Sales@Example.com" and "smtp_password" not in one
    invalid = api.post(
        "/sender-accounts/smtp",
        json={"email_address": "x@example.com", "smtp_port": 0, "smtp_password": "hunter2-secret"},
    )
    assert invalid.status_code == 422 and "hunter2-secret" not in invalid.text
    assert api.get("/sender-accounts/nope").json() == {"detail": "Sender account not found"}


def test_inbox_of_an_active_campaign_cannot_be_deleted(api: httpx.Client) -> None:
    campaign_id = make_campaign(api)
    launch(api, campaign_id, ["a@example.com"])
    inbox_id = api.get(f"/campaigns/{campaign_id}").json()["inbox_ids"][0]
    refused = api.delete(f"/sender-accounts/{inbox_id}")
    assert refused.status_code == 400 and campaign_id in refused.json()["detail"]
    api.post(f"/campaigns/{campaign_id}/pause")
    assert api.delete(f"/sender-accounts/{inbox_id}").status_code == 200
    assert api.get(f"/campaigns/{campaign_id}").json()["inbox_ids"] == []
    assert api.get(f"/sender-accounts/{inbox_id}").status_code == 404


def test_file_backed_state_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "coldsend.db")
    with serving(create_app(db_path=db, admin_key="cs_live_fixed")) as server:
        headers = {"X-API-Key": "cs_live_fixed"}
        created = httpx.post(
            f"{server.url}/api/public/v1/campaigns", headers=headers, json={"name": "Persisted one"}
        )
        assert created.status_code == 201
    with serving(create_app(db_path=db, admin_key="cs_live_fixed")) as server:
        listed = httpx.get(f"{server.url}/api/public/v1/campaigns", headers=headers).json()
        assert [c["name"] for c in listed["campaigns"]] == ["Persisted one"]
