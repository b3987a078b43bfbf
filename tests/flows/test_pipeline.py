"""The trigger pipeline end to end: ensure, sync, launch; sending; write-back; and a re-run."""

from __future__ import annotations

from flows.campaigns import CampaignSpec, VariantSpec
from flows.events import CAMPAIGN_LAUNCHED, LEADS_SYNCED
from flows.pipeline import crm_to_campaign_pipeline
from flows.write_back import write_back_statuses
from tests._stack import Stack
from tests.flows._helpers import campaign_events, child_flow_runs, new_inbox, run_flow


def test_pipeline_end_to_end_then_write_back(stack: Stack) -> None:
    ids = stack.salesforce.seed(40, seed=11)
    inbox = f"outreach-{stack.tag}@acme.example"
    new_inbox(stack, inbox)
    spec = CampaignSpec(
        name=f"Pipeline test {stack.tag}",
        inbox_emails=[inbox],
        variants=[
            VariantSpec(subject_template="Hi {{first_name}}", email_content="Hello from us.")
        ],
    )
    store = stack.salesforce_store()

    run = run_flow(
        crm_to_campaign_pipeline, campaign=spec, lead_store=store, coldsend=stack.coldsend_block
    )

    report = run.result
    campaign_id = report.campaign_id
    assert report.sync.uploaded == len(ids) and report.sync.balanced
    assert report.launch.launched and report.launch.status == "ACTIVE"
    children = {f.flow_id for f in child_flow_runs(run.flow_run_id)}
    assert len(children) == 3  # ensure, sync and launch ran as sub-flows
    (synced,) = campaign_events(LEADS_SYNCED, campaign_id)
    assert synced.payload["uploaded"] == len(ids)
    assert len(campaign_events(CAMPAIGN_LAUNCHED, campaign_id)) == 1

    # A re-delivered trigger converges: same campaign, nothing uploaded, no second launch.
    again = crm_to_campaign_pipeline(campaign=spec, lead_store=store, coldsend=stack.coldsend_block)
    assert again.campaign_id == campaign_id
    assert again.sync.uploaded == 0 and not again.launch.launched
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
