"""The trigger pipeline end to end: ensure, sync, launch; sending; write-back; and a re-run."""

from __future__ import annotations

from pathlib import Path

from flows.campaigns import CampaignSpec, VariantSpec
from flows.events import CAMPAIGN_LAUNCHED, LEADS_SYNCED
from flows.pipeline import crm_to_campaign_pipeline
from flows.scopes import FLOW_SCOPES
from flows.write_back import write_back_statuses
from tests._stack import Stack
from tests.flows._helpers import (
    campaign_events,
    child_flow_runs,
    key_block,
    new_inbox,
    run_flow,
)

API = "/api/public/v1"


def test_pipeline_end_to_end_then_write_back(stack: Stack) -> None:
    ids = stack.salesforce.seed(40, seed=11)
    inbox = f"outreach-{stack.tag}@acme.example"
    inbox_id = new_inbox(stack, inbox)
    spec = CampaignSpec(
        name=f"Pipeline test {stack.tag}",
        inbox_emails=[inbox],
        variants=[
            VariantSpec(subject_template="Hi {{first_name}}", email_content="Hello from us.")
        ],
    )
    store = stack.salesforce_store()
    # A new key: its scopes have not been probed yet, so the first run pays for the probes.
    block = key_block(stack, sorted(FLOW_SCOPES["pipeline"]), "pipeline")
    stack.coldsend.reset_stats()

    run = run_flow(crm_to_campaign_pipeline, campaign=spec, lead_store=store, coldsend=block)

    report = run.result
    campaign_id = report.campaign_id
    assert report.sync.uploaded == len(ids) and report.sync.balanced
    assert report.launch.launched and report.launch.status == "ACTIVE"
    children = {f.flow_id for f in child_flow_runs(run.flow_run_id)}
    assert len(children) == 2  # sync and launch ran as sub-flows (ensure is a task)
    (synced,) = campaign_events(LEADS_SYNCED, campaign_id)
    assert synced.payload["uploaded"] == len(ids)
    assert len(campaign_events(CAMPAIGN_LAUNCHED, campaign_id)) == 1
    # The request budget of a new campaign: 3 scope probes (leads:read, leads:create,
    # campaigns:update), one listing (which also serves the sync), the inbox list, the create,
    # the upload and its job reads, and one request that sets inboxes and variants and
    # launches. No read of the new campaign, no export of it (the listing shows it empty).
    requests = dict(stack.coldsend.stats()["requests"])
    polls = requests.pop(f"GET {API}/campaigns/{{campaign_id}}/leads/upload/{{job_id}}")
    assert 2 <= polls <= 3  # the leads:read probe + one or two reads of the one job
    assert requests == {
        f"POST {API}/campaigns/{{campaign_id}}/leads/manual": 1,  # leads:create probe (404)
        f"PUT {API}/campaigns/{{campaign_id}}": 2,  # campaigns:update probe (404) + launch
        f"GET {API}/campaigns": 1,
        f"GET {API}/sender-accounts": 1,
        f"POST {API}/campaigns": 1,
        f"POST {API}/campaigns/{{campaign_id}}/leads": 1,
    }
    with stack.client() as client:
        launched = client.get_campaign(campaign_id)
    assert [i.lower() for i in launched.inbox_ids] == [inbox_id.lower()]
    assert [v["subject_template"] for v in launched.variants] == ["Hi {{first_name}}"]

    # A re-delivered trigger converges: same campaign, nothing uploaded, no second launch,
    # and two requests: the listing and the campaign's export.
    stack.coldsend.reset_stats()
    again = crm_to_campaign_pipeline(campaign=spec, lead_store=store, coldsend=block)
    assert again.campaign_id == campaign_id
    assert again.sync.uploaded == 0 and not again.launch.launched
    assert again.launch.status == "ACTIVE"
    assert stack.coldsend.stats()["requests"] == {
        f"GET {API}/campaigns": 1,
        f"GET {API}/campaigns/{{campaign_id}}/leads/export": 1,
    }
    assert len(stack.campaign_emails(campaign_id)) == len(ids)

    # A simulated day of sending, then the results land on the CRM records.
    stack.coldsend.advance(steps=5)
    with stack.client() as client, client.export_leads(campaign_id) as rows:
        campaign_status = {row.custom_fields["crm_record_id"]: str(row.status) for row in rows}
    assert set(campaign_status.values()) - {"PENDING", "QUEUED"}
    written = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert written.written == len(ids)
    records = stack.salesforce.by_id()
    assert {i: records[i]["ColdSend_Status__c"] for i in ids} == campaign_status


def test_a_draft_campaign_gets_its_changed_variants_with_the_launch_request(
    stack: Stack, tmp_path: Path
) -> None:
    inbox_id = new_inbox(stack, f"drafts-{stack.tag}@acme.example")
    path = tmp_path / "leads.csv"
    path.write_text("Email\r\n" + "".join(f"d{i}@example.com\r\n" for i in range(5)))
    store = stack.csv_store(path)
    spec = CampaignSpec(
        name=f"Draft pipeline {stack.tag}",
        inbox_ids=[inbox_id],
        variants=[VariantSpec(subject_template="First draft", email_content="Hello from us.")],
    )
    block = key_block(stack, sorted(FLOW_SCOPES["pipeline"]), "drafts")

    # Without launching, ensure applies inboxes and variants itself: the campaign stays DRAFT.
    held = crm_to_campaign_pipeline(campaign=spec, lead_store=store, coldsend=block, launch=False)
    with stack.client() as client:
        draft = client.get_campaign(held.campaign_id)
    assert held.launch.status == "not requested" and draft.status == "DRAFT"
    assert [v["subject_template"] for v in draft.variants] == ["First draft"]

    # Then the subject changes and the pipeline launches: the changed variant rides on the
    # launch request, so the campaign is updated once and read once (to compare).
    spec.variants[0].subject_template = "Second draft"
    stack.coldsend.reset_stats()
    launched = crm_to_campaign_pipeline(campaign=spec, lead_store=store, coldsend=block)

    assert launched.campaign_id == held.campaign_id and launched.launch.launched
    requests = stack.coldsend.stats()["requests"]
    assert requests == {
        f"GET {API}/campaigns": 1,
        f"GET {API}/campaigns/{{campaign_id}}": 1,
        f"GET {API}/campaigns/{{campaign_id}}/leads/export": 1,
        f"PUT {API}/campaigns/{{campaign_id}}": 1,
    }
    with stack.client() as client:
        active = client.get_campaign(held.campaign_id)
    assert active.status == "ACTIVE"
    assert [v["subject_template"] for v in active.variants] == ["Second draft"]
