"""`prefect-coldsend validate | plan | run | deploy`: the commands over a sync definitions file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.definitions import Definitions, DefinitionsError, SyncDefinition, load_definitions

if TYPE_CHECKING:
    from blocks.leads import LeadStore

__all__ = ["deploy", "plan", "run", "validate"]

REJECT_REASONS_SHOWN = 10


def validate(args: argparse.Namespace) -> int:
    definitions = load_definitions(args.file)
    for sync in definitions.syncs:
        print(f"ok  {sync.name}: {_describe(definitions, sync)}")
    print(f"{args.file}: {len(definitions.syncs)} sync(s) valid")
    return 0


def _describe(definitions: Definitions, sync: SyncDefinition) -> str:
    source = sync.source
    if source.block:
        what = source.block
    elif source.csv:
        what = f"CSV {source.csv.path}"
    elif source.sheet:
        what = f"sheet {source.sheet.spreadsheet_id}/{source.sheet.worksheet}"
    elif source.hubspot:
        what = "HubSpot contacts" + (
            f" of list {source.hubspot.list_id}" if source.hubspot.list_id else ""
        )
    else:
        assert source.salesforce is not None
        what = f"Salesforce {source.salesforce.object}"
    ref = sync.campaign
    if ref.id:
        campaign = f"campaign {ref.id}"
    else:
        campaign = f"campaign {definitions.campaign_spec(sync).name!r}"
    return f"{what} -> {campaign}" + (", launched when ready" if sync.launch else "")


def _campaign_id(definitions: Definitions, sync: SyncDefinition, *, create: bool) -> str | None:
    """The sync's campaign id; a spec's campaign is ensured (`create`) or only looked up."""
    ref = sync.campaign
    if ref.id:
        return ref.id
    spec = definitions.campaign_spec(sync)
    coldsend = definitions.coldsend(sync)
    if create:
        from flows.campaigns import ensure_campaign

        return ensure_campaign(spec, coldsend=coldsend)
    from flows._common import load_coldsend

    with load_coldsend(coldsend).get_client() as client:
        for campaign in client.iter_campaigns(search=spec.name):
            if campaign.name == spec.name:
                return campaign.campaign_id
    return None


def _reject_reasons(path: str | None) -> list[str]:
    if not path or not Path(path).is_file():
        return []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    shown = []
    for row in rows[:REJECT_REASONS_SHOWN]:
        where = f"row {row['row']}" if row.get("row") else (row.get("record") or "?")
        shown.append(f"{where}: {row.get('reason', '')}")
    if len(rows) > REJECT_REASONS_SHOWN:
        shown.append(f"... and {len(rows) - REJECT_REASONS_SHOWN} more in {path}")
    return shown


def _source_preview(store: Any) -> tuple[int, int, list[str]]:
    """For a campaign that does not exist yet: read the source only (valid, rejected, reasons)."""
    from connectors.leads import Lead

    valid = rejected = 0
    reasons: list[str] = []
    for item in store.lead_source().read():
        if isinstance(item, Lead):
            valid += 1
        else:
            rejected += 1
            if len(reasons) < REJECT_REASONS_SHOWN:
                reasons.append(f"{item.where}: {item.reason}")
    return valid, rejected, reasons


def plan(args: argparse.Namespace) -> int:
    """A dry run of every sync: what it would upload, update, delete and reject. No change."""
    from flows._common import load_lead_store
    from flows.sync import sync_leads_to_campaign

    definitions = load_definitions(args.file)
    for sync in definitions.select(args.sync):
        store = definitions.lead_store(sync)
        campaign_id = _campaign_id(definitions, sync, create=False)
        print(f"sync {sync.name}: {_describe(definitions, sync)}")
        if campaign_id is None:
            spec = definitions.campaign_spec(sync)
            valid, rejected, reasons = _source_preview(load_lead_store(store))
            print(f"  campaign {spec.name!r} does not exist yet: would be created")
            print(f"  new: {valid}  rejected: {rejected}")
            for reason in reasons:
                print(f"    rejected {reason}")
            continue
        report = sync_leads_to_campaign(
            campaign_id=campaign_id,
            lead_store=store,
            dry_run=True,
            **definitions.sync_parameters(sync),
        )
        print(
            f"  new: {report.to_upload}  already in campaign: {report.already_in_campaign}  "
            f"duplicate in source: {report.duplicate_in_source}  rejected: {report.rejected}  "
            f"suppressed: {report.suppressed} (opted out: {report.opted_out})"
        )
        print(
            f"  would update: {report.to_update}  would delete: {report.to_delete}  "
            f"could not remove: {len(report.could_not_remove)}"
        )
        for change in report.changes_sample[:5]:
            print(f"    {change.email}: {change.field} {change.old!r} -> {change.new!r}")
        for lead in report.could_not_remove[:5]:
            print(f"    could not remove {lead.email}: {lead.reason}")
        if report.columns:
            fed = ", ".join(f"{k} <- {v!r}" for k, v in report.columns.items())
            print(f"  columns: {fed}; unused: {', '.join(report.unused_columns) or 'none'}")
        for reason in _reject_reasons(report.rejects_csv):
            print(f"    rejected {reason}")
    print("plan: nothing was changed")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen syncs once: ensure the campaign, sync, launch when asked, write back."""
    from flows.campaigns import launch_campaign_when_ready
    from flows.sync import sync_leads_to_campaign
    from flows.write_back import write_back_statuses

    definitions = load_definitions(args.file)
    for sync in definitions.select(args.sync):
        store = definitions.lead_store(sync)
        coldsend = definitions.coldsend(sync)
        campaign_id = _campaign_id(definitions, sync, create=True)
        assert campaign_id is not None
        report = sync_leads_to_campaign(
            campaign_id=campaign_id, lead_store=store, **definitions.sync_parameters(sync)
        )
        print(
            f"sync {sync.name}: campaign {campaign_id}: read {report.read}, uploaded "
            f"{report.uploaded}, already in campaign {report.already_in_campaign}, duplicate "
            f"in source {report.duplicate_in_source}, rejected {report.rejected}, suppressed "
            f"{report.suppressed}; updated {report.updated}, deleted {report.deleted}, opted "
            f"out {report.opted_out}, departed {report.departed}, could not remove "
            f"{len(report.could_not_remove)}"
        )
        for lead in report.could_not_remove:
            print(f"  could not remove {lead.email}: {lead.reason}")
        if report.unused_columns:
            print(f"  unused columns: {', '.join(report.unused_columns)}")
        if sync.launch and (report.uploaded or report.campaign_status == "DRAFT"):
            launched = launch_campaign_when_ready(
                campaign_id=campaign_id, coldsend=coldsend, job_ids=report.job_ids
            )
            print(f"  launch: {launched.status}")
        if args.write_back and sync.write_back.enabled:
            back = write_back_statuses(campaign_id=campaign_id, lead_store=store, coldsend=coldsend)
            print(f"  write-back: {back.written} written, {back.unchanged} unchanged")
    return 0


def deploy(args: argparse.Namespace) -> int:
    """Create or update each sync's deployments on a work pool (refusing invalid syncs)."""
    from app.serve import deployments_for

    definitions = load_definitions(args.file)
    chosen = definitions.select(args.sync)
    pool = args.pool or definitions.parsed.work_pool.name
    _require_pool(pool)
    planned = [(sync, deployments_for(definitions, sync, save_inline=True)) for sync in chosen]
    _ensure_api_budgets(
        {definitions.coldsend(sync) for sync in chosen},
        [definitions.lead_store(sync) for sync in chosen],
    )
    _ensure_crash_detection(args.heartbeat_seconds)
    for sync, deployments in planned:
        for deployment in deployments:
            deployment_id = deployment.apply(work_pool_name=pool)
            print(f"deployed {deployment.flow_name}/{deployment.name} ({deployment_id})")
        print(f"sync {sync.name}: {len(deployments)} deployment(s) on work pool {pool!r}")
    return 0


def _ensure_api_budgets(
    coldsend_blocks: set[str | None], lead_stores: list[str | LeadStore]
) -> None:
    """Create the shared API budgets (flows/budgets.py) of each ColdSend key and of each lead
    store's account (Google user, HubSpot app, Salesforce org), before any run starts.

    Credentials that cannot be loaded here are reported, not fatal: the runs will say the
    same, and without the budget each run is paced by its own client alone.
    """
    from flows._common import ConfigurationError
    from flows.budgets import ensure_budgets_for, ensure_store_budgets

    for block in sorted(coldsend_blocks, key=lambda name: name or ""):
        try:
            names = ensure_budgets_for(block)
        except ConfigurationError as exc:
            print(f"no shared API budget created: {exc}", file=sys.stderr)
        else:
            print(f"shared API budget: {', '.join(names)}")
    for store in lead_stores:
        try:
            names = ensure_store_budgets([store])
        except ConfigurationError as exc:
            print(f"no shared API budget created: {exc}", file=sys.stderr)
        else:
            if names:
                print(f"shared API budget: {', '.join(names)}")


def _ensure_crash_detection(heartbeat_seconds: str | None) -> None:
    """Create the automations that crash the runs of a dead worker (flows/crash_detection.py)."""
    from flows.crash_detection import ensure_crash_detection

    try:
        names = ensure_crash_detection(heartbeat_seconds)
    except ValueError as exc:
        raise DefinitionsError([f"--heartbeat-seconds: {exc}"]) from None
    print(f"crash detection: {', '.join(names)}")


def _require_pool(pool: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise DefinitionsError(
                [
                    f"no work pool {pool!r} on the Prefect server: create it (prefect work-pool "
                    f"create {pool} --type process) or name another with --pool"
                ]
            ) from None
