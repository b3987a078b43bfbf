"""Helpers shared by the ColdSend emulator tests (campaigns, inboxes, CSV uploads, jobs)."""

from __future__ import annotations

import time
from typing import Any

import httpx

VARIANT = {
    "variant_name": "A",
    "subject_template": "Hi {{first_name}}",
    "email_content": "Hello {{first_name}}, a short note about {{company}}.",
    "distribution_percent": 100,
}


def make_campaign(api: httpx.Client, name: str = "Campaign under test", **fields: Any) -> str:
    response = api.post("/campaigns", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


def make_inbox(api: httpx.Client, email: str = "sender@example.com") -> str:
    response = api.post(
        "/sender-accounts/smtp",
        json={
            "email_address": email,
            "display_name": "Sender",
            "inbox_type": "CUSTOM_SMTP",
            "smtp_host": "smtp.example.com",
            "smtp_port": 587,
            "smtp_username": "sender",
            "smtp_password": "hunter2-secret",
            "daily_limit": 50,
        },
    )
    assert response.status_code == 201, response.text
    inbox_id: str = response.json()["inbox_id"]
    return inbox_id


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    lines = [",".join(header), *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(
    api: httpx.Client,
    campaign_id: str,
    data: bytes,
    *,
    mapping: str | None = None,
    duplicate_action: str | None = None,
) -> httpx.Response:
    form = {}
    if mapping is not None:
        form["mapping"] = mapping
    if duplicate_action is not None:
        form["duplicate_action"] = duplicate_action
    return api.post(
        f"/campaigns/{campaign_id}/leads",
        files={"file": ("leads.csv", data, "text/csv")},
        data=form,
    )


def wait_job(
    api: httpx.Client, campaign_id: str, job_id: str, timeout: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/campaigns/{campaign_id}/leads/upload/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def import_leads(api: httpx.Client, campaign_id: str, emails: list[str]) -> dict[str, Any]:
    response = upload(api, campaign_id, csv_bytes(["email"], [[e] for e in emails]))
    assert response.status_code == 202, response.text
    job = wait_job(api, campaign_id, response.json()["job_id"])
    assert job["status"] == "COMPLETED", job
    return job


def launch(api: httpx.Client, campaign_id: str, emails: list[str]) -> None:
    inbox = make_inbox(api, f"sender-{campaign_id[:8]}@example.com")
    import_leads(api, campaign_id, emails)
    response = api.put(
        f"/campaigns/{campaign_id}",
        json={"inbox_ids": [inbox], "variants": [VARIANT], "launch": True},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ACTIVE", response.json()
