"""Serve every flow from one process, no work pool or worker: `prefect-coldsend serve`.

Schedules and triggers mirror deployments/prefect.yaml: sync every 15 minutes, write-back every
hour, launch on `coldsend.leads.synced`, and the pipeline on an external `crm.lead.created`.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from flows.campaigns import launch_campaign_when_ready
from flows.events import LAUNCH_WANTED_LABEL, LEADS_SYNCED
from flows.pipeline import crm_to_campaign_pipeline
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses

__all__ = ["CRM_LEAD_CREATED", "build_deployments", "serve_all"]

CRM_LEAD_CREATED = "crm.lead.created"


def _no_overlap() -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def build_deployments(
    *,
    campaign_id: str,
    lead_store: str,
    coldsend: str | None = None,
    sync_interval: float = 900,
    write_back_interval: float = 3600,
) -> list[RunnerDeployment]:
    """The four deployments `serve_all` runs, for a campaign and a lead store."""
    common: dict[str, Any] = {"coldsend": coldsend or ""}
    # to_deployment is sync-compatible: called from sync code it returns the deployment.
    deployments: list[Any] = [
        sync_leads_to_campaign.to_deployment(
            name="sync-every-15-minutes",
            interval=sync_interval,
            parameters={"campaign_id": campaign_id, "lead_store": lead_store, **common},
            concurrency_limit=_no_overlap(),
            tags=["coldsend", "sync"],
        ),
        write_back_statuses.to_deployment(
            name="write-back-hourly",
            interval=write_back_interval,
            parameters={"campaign_id": campaign_id, "lead_store": lead_store, **common},
            concurrency_limit=_no_overlap(),
            tags=["coldsend", "write-back"],
        ),
        launch_campaign_when_ready.to_deployment(
            name="launch-on-sync",
            parameters=common,
            triggers=[
                DeploymentEventTrigger(
                    expect={LEADS_SYNCED},
                    match={
                        "prefect.resource.id": "coldsend.campaign.*",
                        LAUNCH_WANTED_LABEL: "true",
                    },
                    parameters={
                        "campaign_id": "{{ event.payload.campaign_id }}",
                        "job_ids": "{{ event.payload.job_ids }}",
                    },
                )
            ],
            tags=["coldsend", "launch"],
        ),
        crm_to_campaign_pipeline.to_deployment(
            name="pipeline-on-crm-event",
            parameters=common,
            triggers=[
                DeploymentEventTrigger(
                    expect={CRM_LEAD_CREATED},
                    match={"prefect.resource.id": "crm.*"},
                    parameters={
                        "campaign": "{{ event.payload.campaign }}",
                        "lead_store": "{{ event.payload.lead_store }}",
                    },
                )
            ],
            tags=["coldsend", "pipeline"],
        ),
    ]
    return [cast(RunnerDeployment, d) for d in deployments]


def serve_all(**kwargs: Any) -> None:
    """Serve the deployments of `build_deployments(**kwargs)` until interrupted."""
    serve(*build_deployments(**kwargs))
