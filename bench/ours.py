"""Our side of the benchmark: the real Prefect flows of flows/, run in a worker process.

For a size N the worker runs, against a Prefect server and the sandboxes in other processes:

1. ``crm_to_campaign_pipeline`` for the Salesforce store (N/2 Leads): ensure the campaign,
   sync, launch; then the same for the Google Sheet store (N/2 rows), into a second campaign.
2. Simulated sending (``/_sandbox/advance``, not measured).
3. ``write_back_statuses`` for each store.
4. The same again with nothing changed (the re-run).

Every flow run carries the tags ``<run tag>`` and ``<run tag>-<phase>`` so the orchestrator can
count task runs per phase through the Prefect client afterwards.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Recorder


def _spec(name: str, inbox_id: str) -> Any:
    from flows.campaigns import CampaignSpec, VariantSpec

    return CampaignSpec(
        name=name,
        inbox_ids=[inbox_id],
        variants=[
            VariantSpec(
                subject_template="Quick question, {{first_name}}",
                email_content="Hi {{first_name}}, a short note about {{company}}.",
            )
        ],
    )


def run(plan: dict[str, Any]) -> None:
    """Run our pipeline at ``plan["size"]`` and record it (see the module docstring)."""
    from prefect import tags

    from flows.pipeline import PipelineReport, crm_to_campaign_pipeline
    from flows.write_back import WriteBackReport, write_back_statuses

    rec = Recorder(plan)
    size: int = plan["size"]
    tag: str = plan["run_tag"]
    coldsend: str = plan["coldsend_block"]
    stores = [
        ("salesforce", plan["salesforce_store"], plan["salesforce_leads"]),
        ("sheets", plan["sheet_store"], plan["sheet_leads"]),
    ]
    campaigns: dict[str, str] = {}

    def pipeline(source: str, store: str, leads: int, rerun: bool) -> None:
        def go() -> PipelineReport:
            with tags(tag, f"{tag}-{prefix}sync-{source}"):
                report: PipelineReport = crm_to_campaign_pipeline(
                    campaign=_spec(f"Benchmark {tag} {source}", plan["inbox_id"]),
                    lead_store=store,
                    coldsend=coldsend,
                )
            return report

        prefix = "rerun-" if rerun else ""
        report = rec.phase(f"{prefix}sync-{source}", leads, go, group=f"{prefix}sync")
        campaigns[source] = report.campaign_id
        sync = report.sync
        rec.check(sync.balanced and sync.unaccounted == 0, f"{source} sync balanced")
        if rerun:
            rec.check(sync.uploaded == 0, f"{source} re-run uploaded nothing")
        else:
            rec.check(sync.uploaded == leads, f"{source} sync uploaded {leads}")
        rec.check(report.launch.status == "ACTIVE", f"{source} campaign ACTIVE")

    def write_back(source: str, store: str, leads: int, rerun: bool) -> None:
        def go() -> WriteBackReport:
            with tags(tag, f"{tag}-{prefix}write-back-{source}"):
                report: WriteBackReport = write_back_statuses(
                    campaign_id=campaigns[source], lead_store=store, coldsend=coldsend
                )
            return report

        prefix = "rerun-" if rerun else ""
        report = rec.phase(f"{prefix}write-back-{source}", leads, go, group=f"{prefix}write-back")
        rec.check(report.exported == leads and report.failed == 0, f"{source} all exported")
        if rerun:
            rec.check(report.written == 0, f"{source} re-run wrote nothing")
        else:
            rec.check(report.written == leads, f"{source} wrote {leads} statuses")

    for source, store, leads in stores:
        pipeline(source, store, leads, rerun=False)
    rec.sandboxes.advance(plan["advance_steps"])
    for source, store, leads in stores:
        write_back(source, store, leads, rerun=False)
    if plan.get("rerun", True):
        for source, store, leads in stores:
            pipeline(source, store, leads, rerun=True)
        for source, store, leads in stores:
            write_back(source, store, leads, rerun=True)
    rec.extra["campaigns"] = campaigns
    rec.extra["leads"] = size
    rec.finish()


def run_parallel_demo(plan: dict[str, Any]) -> None:
    """One sync of ``plan["size"]`` Salesforce leads per upload parallelism in ``plan["parallel"]``.

    Each setting syncs into its own fresh campaign with ``parallel_uploads=k`` on a
    ``ThreadPoolTaskRunner(max_workers=k)``: the parts' upload jobs are waited on concurrently.
    """
    from typing import cast

    from prefect import tags
    from prefect.task_runners import ThreadPoolTaskRunner

    from connectors.coldsend import ColdSendClient
    from flows.sync import SyncReport, sync_leads_to_campaign

    rec = Recorder(plan)
    tag: str = plan["run_tag"]
    leads: int = plan["salesforce_leads"]
    with ColdSendClient(rec.info.coldsend_key, base_url=rec.info.coldsend_base_url) as client:
        campaign_ids = [
            client.create_campaign(name=f"Benchmark {tag} parallel {k}").campaign_id
            for k in plan["parallel"]
        ]
    for k, campaign_id in zip(plan["parallel"], campaign_ids, strict=True):
        flow = sync_leads_to_campaign.with_options(
            task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=max(k, 1)))
        )

        def go(flow: Any = flow, k: int = k, campaign_id: str = campaign_id) -> SyncReport:
            with tags(tag, f"{tag}-parallel-{k}"):
                report: SyncReport = flow(
                    campaign_id=campaign_id,
                    lead_store=plan["salesforce_store"],
                    coldsend=plan["coldsend_block"],
                    incremental=False,
                    parallel_uploads=k,
                )
            return report

        report = rec.phase(f"parallel-{k}", leads, go, group="parallel")
        rec.check(report.uploaded == leads and report.balanced, f"parallel {k} uploaded {leads}")
        rec.phases[-1]["parts"] = report.parts
    rec.finish()
