"""The pipeline for trigger-based runs: ensure the campaign, sync leads into it, launch it."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel

from flows._common import load_coldsend
from flows.campaigns import (
    CampaignSpec,
    LaunchReport,
    find_or_create_campaign,
    launch_campaign_when_ready,
)
from flows.naming import label_run, pipeline_run_name, run_tags
from flows.sync import SyncReport, sync_leads_to_campaign
from flows.tasks import check_scopes

__all__ = ["PipelineReport", "crm_to_campaign_pipeline"]


class PipelineReport(BaseModel):
    """The three stages' reports."""

    campaign_id: str
    sync: SyncReport
    launch: LaunchReport


@flow(name="crm-to-campaign-pipeline", flow_run_name=pipeline_run_name)
def crm_to_campaign_pipeline(
    campaign: CampaignSpec,
    lead_store: str,
    coldsend: str | None = None,
    suppression_list: list[str] | None = None,
    launch: bool = True,
    wait_for_requirements_seconds: float = 0.0,
) -> PipelineReport:
    """Ensure the campaign exists as specified, sync the lead store into it, then launch it.

    Every stage reconciles with what ColdSend holds, so a re-delivered trigger event or a
    re-run after a crash converges without duplicates. The sync and the launch run as
    sub-flows; ensuring the campaign is a task of this flow.

    ColdSend requests for a new campaign: scope probes (once per key every ten minutes), one
    listing of the account, the create, the sync's uploads and job reads, and one request that
    sets inboxes and variants and launches. A re-run with nothing new: the listing and one
    export of the campaign.

    Args:
        campaign: The campaign spec (found by name, created when missing).
        lead_store: The saved lead store to sync from (``"<block-type>/<name>"``).
        coldsend: A ColdSend Credentials block name.
        suppression_list: Extra emails never to upload.
        launch: Launch after the sync (otherwise only ensure and sync).
        wait_for_requirements_seconds: Passed to the launch flow.

    Returns:
        A `PipelineReport` with each stage's report.

    Raises:
        MissingScopes: The key lacks a scope of ``FLOW_SCOPES["pipeline"]``; raised before
            the campaign is created or changed.

    Example:
        ```python
        from flows.campaigns import CampaignSpec
        from flows.pipeline import crm_to_campaign_pipeline

        report = crm_to_campaign_pipeline(
            campaign=CampaignSpec(name="Inbound follow-up: web leads", inbox_emails=[...]),
            lead_store="salesforce-leads/acme",
        )
        print(report.sync.uploaded, report.launch.status)
        ```
    """
    logger = get_run_logger()
    label_run(None, run_tags(lead_store=lead_store, campaign=campaign.name))
    credentials = load_coldsend(coldsend)
    # The scopes the later stages need are checked before the first stage changes anything;
    # campaigns:read is checked by ensure's first request, campaigns:create by the create.
    needed = ["leads:read", "leads:create"]
    if launch or campaign.variants or campaign.sequences or campaign.inbox_ids:
        needed.append("campaigns:update")
    check_scopes(credentials, "pipeline", needed)
    # Ensure runs as a task: its listing of the account serves the sync too, and the inboxes
    # and variants of a DRAFT campaign ride on the launch request instead of an update.
    ensured = find_or_create_campaign(credentials, campaign, defer_to_launch=launch)
    campaign_id = ensured.campaign_id
    sync = sync_leads_to_campaign(
        campaign_id=campaign_id,
        lead_store=lead_store,
        coldsend=coldsend,
        suppression_list=suppression_list,
        campaign_view=ensured.view,
    )
    if not launch:
        launched = LaunchReport(campaign_id=campaign_id, status="not requested")
    elif sync.campaign_status in ("ACTIVE", "COMPLETED"):
        # Already running (new leads join it): launching would be a no-op costing a request.
        launched = LaunchReport(
            campaign_id=campaign_id,
            campaign_name=sync.campaign_name,
            status=sync.campaign_status,
        )
    else:
        # The sync waited for every one of its upload jobs (it fails otherwise), so the
        # launch has none left to wait for, and the status the sync read still holds.
        launched = launch_campaign_when_ready(
            campaign_id=campaign_id,
            coldsend=coldsend,
            wait_for_requirements_seconds=wait_for_requirements_seconds,
            current_status=sync.campaign_status,
            launch_settings=ensured.deferred or None,
        )
    logger.info("Pipeline done for campaign %s", campaign_id)
    return PipelineReport(campaign_id=campaign_id, sync=sync, launch=launched)
