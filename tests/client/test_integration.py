"""The real client against the ColdSend emulator: every endpoint, every error, state rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.coldsend import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CampaignStatus,
    ColdSendClient,
    ConflictError,
    LeadStatus,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from sandbox.coldsend.fixtures import ColdSendControl

VARIANTS: list[dict[str, Any]] = [
    {
        "variant_name": "A",
        "subject_template": "Hi {{first_name}}",
        "email_content": "Hello {{first_name}} at {{company}}!",
        "distribution_percent": 50,
    },
    {
        "variant_name": "B",
        "subject_template": "{{Hi|Hello}}",
        "email_content": "A second version of the email.",
        "distribution_percent": 50,
    },
]


@pytest.fixture
def client(coldsend_sandbox: ColdSendControl) -> Iterator[ColdSendClient]:
    with ColdSendClient(
        coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url, timeout=30
    ) as c:
        yield c


def new_inbox(client: ColdSendClient, n: int = 1) -> str:
    return client.create_smtp_inbox(
        email_address=f"sender{n}@example.com",
        display_name=f"Sender {n}",
        smtp_host="smtp.example.com",
        smtp_port=587,
        smtp_username=f"sender{n}",
        smtp_password="smtp-password-123",
        daily_limit=50,
    ).inbox_id


def test_campaign_crud_and_listing(client: ColdSendClient) -> None:
    ids = [
        client.create_campaign(name=f"Outreach wave {i}", sending_days=[1, 2, 3]).campaign_id
        for i in range(5)
    ]
    campaign = client.get_campaign(ids[0])
    assert (campaign.name, campaign.status, campaign.sending_days) == (
        "Outreach wave 0",
        CampaignStatus.DRAFT,
        [1, 2, 3],
    )
    assert campaign.timezone == "America/New_York"  # the API default

    updated = client.update_campaign(ids[0], name="Outreach wave zero", daily_limit_per_inbox=25)
    assert updated.name == "Outreach wave zero"
    campaign = client.get_campaign(ids[0])
    assert (campaign.daily_limit_per_inbox, campaign.sending_days) == (25, [1, 2, 3])  # partial
    client.update_campaign(ids[0], daily_limit_per_inbox=None)
    assert client.get_campaign(ids[0]).daily_limit_per_inbox is None

    page = client.list_campaigns(page=1, limit=2)
    assert (len(page.campaigns), page.pagination.total, page.pagination.has_next) == (2, 5, True)
    assert sorted(c.campaign_id for c in client.iter_campaigns(page_size=2)) == sorted(ids)
    assert [c.name for c in client.iter_campaigns(search="ZERO")] == ["Outreach wave zero"]
    assert len(list(client.iter_campaigns(status=CampaignStatus.ACTIVE))) == 0

    deleted = client.delete_campaign(ids[1])
    assert deleted.campaign_id == ids[1]
    with pytest.raises(NotFoundError, match="Campaign not found"):
        client.get_campaign(ids[1])


def test_inbox_endpoints(client: ColdSendClient) -> None:
    first = new_inbox(client, 1)
    second = new_inbox(client, 2)
    inbox = client.get_inbox(first)
    assert inbox.email_address == "sender1@example.com"
    assert "smtp-password-123" not in inbox.model_dump_json()  # credentials never come back
    assert client.list_inboxes(limit=1).pagination.total == 2
    assert {i.inbox_id for i in client.iter_inboxes(page_size=1)} == {first, second}
    with pytest.raises(ConflictError, match="already exists"):
        new_inbox(client, 1)
    client.delete_inbox(second)
    with pytest.raises(NotFoundError):
        client.get_inbox(second)


def test_lead_endpoints(client: ColdSendClient, coldsend_sandbox: ColdSendControl) -> None:
    cid = client.create_campaign(name="Lead endpoint test").campaign_id
    lead = client.add_lead(
        cid,
        email="Ann@Example.com",
        first_name="Ann",
        company="Acme",
        custom_fields={"tier": "gold", "city": "Oslo"},
    )
    assert lead.status is LeadStatus.PENDING
    with pytest.raises(ConflictError):
        client.add_lead(cid, email="ann@example.com ")  # same email, other case and spacing
    other = client.add_lead(cid, email="bo@example.com")

    updated = client.update_lead(
        cid, lead.lead_id, last_name="Lee", custom_fields={"tier": "platinum", "city": None}
    )
    assert updated.last_name == "Lee"
    assert updated.custom_fields == {"tier": "platinum"}  # merge patch: set one, remove one

    detail = client.get_lead(cid, lead.lead_id)
    assert (detail.first_name, detail.company, detail.email_interactions, detail.replies) == (
        "Ann",
        "Acme",
        [],
        [],
    )

    assert client.list_leads(cid, limit=1).pagination.total == 2
    assert [x.email for x in client.iter_leads(cid, search="bo@")] == ["bo@example.com"]

    coldsend_sandbox.set_lead_status(cid, "bo@example.com", "SENT")
    assert [x.email for x in client.iter_leads(cid, status=LeadStatus.SENT)] == ["bo@example.com"]
    result = client.delete_leads(cid, lead_ids=[lead.lead_id, other.lead_id])
    assert result.deleted_count == 1
    assert [s.lead_id for s in result.skipped] == [other.lead_id]  # only PENDING leads go
    with pytest.raises(NotFoundError, match="Lead not found"):
        client.get_lead(cid, lead.lead_id)


def test_launch_sets_inboxes_and_variants_in_the_same_request(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Launch with settings").campaign_id
    inbox = new_inbox(client)
    # Settings are applied before the requirements are checked, even when one still misses.
    refused = client.launch_campaign(cid, inbox_ids=[inbox], variants=VARIANTS)
    assert refused.status is CampaignStatus.DRAFT and refused.missing_requirements == ["leads"]
    assert client.get_campaign(cid).inbox_ids == [inbox]

    other = client.create_campaign(name="Launch with settings, ready").campaign_id
    client.add_lead(other, email="lead@example.com")
    launched = client.launch_campaign(other, inbox_ids=[inbox], variants=VARIANTS)
    assert launched.status is CampaignStatus.ACTIVE and launched.missing_requirements == []
    assert len(client.get_campaign(other).variants) == len(VARIANTS)


def test_launch_pause_activate_and_state_rules(
    client: ColdSendClient, coldsend_sandbox: ColdSendControl
) -> None:
    cid = client.create_campaign(name="Launch rules test").campaign_id
    refused = client.launch_campaign(cid)
    assert refused.status is CampaignStatus.DRAFT
    assert not refused.is_launch_ready
    assert sorted(refused.missing_requirements) == ["inboxes", "leads", "variants"]

    with pytest.raises(BadRequestError):
        client.pause_campaign(cid)  # only ACTIVE campaigns pause

    client.add_lead(cid, email="lead@example.com", first_name="Lee", company="Acme")
    ready = client.update_campaign(cid, inbox_ids=[new_inbox(client)], variants=VARIANTS)
    assert ready.is_launch_ready and ready.missing_requirements == []
    launched = client.launch_campaign(cid)
    assert launched.status is CampaignStatus.ACTIVE

    for action in (
        lambda: client.update_campaign(cid, name="Renamed while active"),
        lambda: client.delete_campaign(cid),
        lambda: client.activate_campaign(cid),
    ):
        with pytest.raises(BadRequestError, match="ACTIVE"):  # the detail names the current state
            action()
    inbox_id = client.get_campaign(cid).inbox_ids[0]
    with pytest.raises(BadRequestError):
        client.delete_inbox(inbox_id)  # in use by an ACTIVE campaign

    assert client.pause_campaign(cid).status is CampaignStatus.PAUSED
    with pytest.raises(BadRequestError, match="PAUSED"):
        client.pause_campaign(cid)
    client.update_campaign(cid, name="Renamed while paused")
    assert client.activate_campaign(cid).status is CampaignStatus.ACTIVE

    coldsend_sandbox.advance(40)
    detail = client.get_lead(cid, next(client.iter_leads(cid)).lead_id)
    assert detail.status is not LeadStatus.PENDING
    assert detail.email_interactions  # the simulated send left a trace


def test_authentication_errors(coldsend_sandbox: ColdSendControl) -> None:
    client = ColdSendClient("cs_live_not_a_real_key", base_url=coldsend_sandbox.base_url)
    with client, pytest.raises(AuthenticationError, match="Invalid or revoked API key") as caught:
        client.list_campaigns()
    assert "cs_live_not_a_real_key" not in str(caught.value)


@pytest.mark.parametrize(
    ("scopes", "call", "missing"),
    [
        (["campaigns:read"], lambda c, cid: c.add_lead(cid, email="x@example.com"), "leads:create"),
        (["leads:all"], lambda c, cid: c.get_campaign(cid), "campaigns:read"),
        (
            ["campaigns:read", "leads:read"],
            lambda c, cid: c.launch_campaign(cid),
            "campaigns:update",
        ),
        (["campaigns:all"], lambda c, cid: c.list_inboxes(), "sender_accounts:read"),
        (
            ["campaigns:create", "campaigns:read"],
            lambda c, cid: c.delete_campaign(cid),
            "campaigns:delete",
        ),
    ],
)
def test_scope_denial_names_the_missing_scope(
    client: ColdSendClient,
    coldsend_sandbox: ColdSendControl,
    scopes: list[str],
    call: Any,
    missing: str,
) -> None:
    cid = client.create_campaign(name="Scope test campaign").campaign_id
    key = coldsend_sandbox.new_key(scopes)
    limited = ColdSendClient(key, base_url=coldsend_sandbox.base_url)
    with limited, pytest.raises(PermissionDeniedError) as caught:
        call(limited, cid)
    err = caught.value
    assert err.missing == [missing]
    assert err.required == [missing]
    assert sorted(err.granted) == sorted(scopes)
    assert missing in str(err)
    assert key not in str(err) and key not in repr(err.request)


def test_legacy_write_scope_is_honoured(
    client: ColdSendClient, coldsend_sandbox: ColdSendControl
) -> None:
    cid = client.create_campaign(name="Legacy scope campaign").campaign_id
    key = coldsend_sandbox.new_key(["campaigns:write", "campaigns:read"])
    with ColdSendClient(key, base_url=coldsend_sandbox.base_url) as legacy:
        assert legacy.update_campaign(cid, name="Legacy renamed it").name == "Legacy renamed it"


def test_unprocessable_entity_from_the_server(client: ColdSendClient) -> None:
    # The client accepts any status string so new server statuses work; the server checks it.
    with pytest.raises(UnprocessableEntityError) as caught:
        client.list_campaigns(status="SOMETIMES")
    assert caught.value.field_errors
    assert caught.value.field_errors[0].loc[-1] == "status"


def test_not_found_everywhere(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Not found campaign").campaign_id
    for call in (
        lambda: client.get_campaign("00000000-0000-0000-0000-000000000000"),
        lambda: client.get_lead(cid, "00000000-0000-0000-0000-000000000000"),
        lambda: client.get_upload_job(cid, "00000000-0000-0000-0000-000000000000"),
        lambda: client.get_inbox("00000000-0000-0000-0000-000000000000"),
        lambda: list(client.export_leads("00000000-0000-0000-0000-000000000000")),
    ):
        with pytest.raises(NotFoundError) as caught:
            call()
        assert caught.value.detail.endswith("not found")


def test_unknown_inbox_in_update_is_a_bad_request(client: ColdSendClient) -> None:
    cid = client.create_campaign(name="Unknown inbox campaign").campaign_id
    with pytest.raises(APIStatusError) as caught:
        client.update_campaign(cid, inbox_ids=["00000000-0000-0000-0000-000000000000"])
    assert caught.value.status_code in (400, 404, 422)
