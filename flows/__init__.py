"""Prefect flows and tasks: sync leads, launch campaigns, write statuses back.

The public flows and the models their parameters and results use are importable from here::

    from flows import sync_leads_to_campaign

    report = sync_leads_to_campaign(campaign_id="...", lead_store="csv-file-leads/prospects")

Names resolve on first use (PEP 562), so importing one submodule (``flows.scopes``) does not
load every flow, and no submodule can meet a half-initialised package while they import
each other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.campaigns import (
        CampaignSpec,
        FollowUpSpec,
        LaunchReport,
        VariantSpec,
        ensure_campaign,
        launch_campaign_when_ready,
    )
    from flows.pipeline import PipelineReport, crm_to_campaign_pipeline
    from flows.sync import SyncIncomplete, SyncReport, sync_leads_to_campaign
    from flows.write_back import WriteBackIncomplete, WriteBackReport, write_back_statuses

__all__ = [
    "CampaignSpec",
    "FollowUpSpec",
    "LaunchReport",
    "PipelineReport",
    "SyncIncomplete",
    "SyncReport",
    "VariantSpec",
    "WriteBackIncomplete",
    "WriteBackReport",
    "crm_to_campaign_pipeline",
    "ensure_campaign",
    "launch_campaign_when_ready",
    "sync_leads_to_campaign",
    "write_back_statuses",
]

_HOMES = {
    "CampaignSpec": "flows.campaigns",
    "FollowUpSpec": "flows.campaigns",
    "LaunchReport": "flows.campaigns",
    "VariantSpec": "flows.campaigns",
    "ensure_campaign": "flows.campaigns",
    "launch_campaign_when_ready": "flows.campaigns",
    "PipelineReport": "flows.pipeline",
    "crm_to_campaign_pipeline": "flows.pipeline",
    "SyncIncomplete": "flows.sync",
    "SyncReport": "flows.sync",
    "sync_leads_to_campaign": "flows.sync",
    "WriteBackIncomplete": "flows.write_back",
    "WriteBackReport": "flows.write_back",
    "write_back_statuses": "flows.write_back",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
