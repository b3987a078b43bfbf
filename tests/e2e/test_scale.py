"""End to end at production shape: Prefect on PostgreSQL, three workers, twelve syncs at once.

A throwaway PostgreSQL cluster (Debian's postgresql, installed by tests/e2e/_postgres.py when
missing) backs a `prefect server start`; three `prefect worker start` processes serve one
process pool. Twelve campaigns are synced from twelve lead stores (three Salesforce stores,
one org partitioned by a filter; three Google Sheets of one user; three CSV files; three
HubSpot contact sets of one account, partitioned by company), all with one ColdSend key, deployed with `prefect deploy` from a prefect.yaml generated from
deployments/prefect.yaml: each sync keeps its 15-minute schedule and concurrency limit, and
launch-on-sync is triggered by every sync's event. The deploy's build step creates the key's
shared API budget (global concurrency limits); the sandboxes run at ColdSend's real limits
(100 requests a minute, 1,000 an hour, per key) and the Sheets quota (60 a minute per user).

The twelve syncs run at once. As soon as a worker is running flow runs, it is SIGKILLed with
everything it started, as if its machine died. Flow runs emit heartbeats
(PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30) and the deploy's crash-detection step
(flows/crash_detection.py: Prefect's documented zombie automation) marks the silent ones
Crashed (a second automation does the same for runs the dead worker had claimed but not
started); the crashed syncs are run again, like an operator or the next
schedule would. Expected: every campaign holds exactly its store's valid leads and is
launched, no sandbox answered 429, no "database is locked" anywhere.

Knobs: COLDSEND_E2E_SCALE_LEADS (leads per store, default 40), COLDSEND_E2E_SCALE_WORKERS
(default 3). A few minutes on an idle 2-core machine.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    HubSpotContacts,
    HubSpotCredentials,
    SalesforceCredentials,
    SalesforceLeads,
)
from blocks.budgets import coldsend_budgets
from connectors.coldsend import ColdSendClient
from sandbox.coldsend.fixtures import ColdSendControl
from sandbox.hubspot.fixtures import HubSpotSandbox
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox
from tests._stack import FLOW_SCOPES
from tests.e2e._postgres import ThrowawayPostgres, ensure_postgres_bin
from tests.e2e._prefect import REPO, TERMINAL, PrefectProcesses, _children_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

LEADS = int(os.environ.get("COLDSEND_E2E_SCALE_LEADS", "40"))
WORKERS = int(os.environ.get("COLDSEND_E2E_SCALE_WORKERS", "3"))
STORES_PER_KIND = 3  # x Salesforce, Sheets, CSV, HubSpot = twelve campaigns
POOL = "coldsend-scale"
SYNC_FLOW = "sync-leads-to-campaign"
LAUNCH = ("launch-campaign-when-ready", "launch-on-sync")
HEARTBEAT_SECONDS = 30  # Prefect's minimum
# A run claimed by a worker that died before starting it (README: 10 minutes in production).
NEVER_STARTED = timedelta(seconds=240)
# Each flow run starts a fresh Python with Prefect imported: 5 to 15 s apiece on a busy box.
RUN_TIMEOUT = 420.0
VARIANT = {
    "variant_name": "A",
    "subject_template": "Hello {{first_name}}",
    "email_content": "Hi {{first_name}}, a short note about {{company}}.",
    "distribution_percent": 100,
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(ensure_postgres_bin())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _scale_prefect_yaml(path: Path, syncs: list[tuple[str, str, str]]) -> Path:
    """deployments/prefect.yaml with its sync deployment repeated per (name, campaign, store)."""
    config = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    shipped = {d["name"]: d for d in config["deployments"]}
    template = shipped["sync-every-15-minutes"]
    deployments = []
    for name, campaign_id, store in syncs:
        sync = {**template, "name": name}
        sync["parameters"] = {
            "campaign_id": campaign_id,
            "lead_store": store,
            "coldsend": "{{ $COLDSEND_BLOCK }}",
        }
        sync["work_pool"] = {**template["work_pool"], "name": POOL}
        deployments.append(sync)
    launch = {**shipped["launch-on-sync"]}
    launch["work_pool"] = {**launch["work_pool"], "name": POOL}
    deployments.append(launch)
    config["deployments"] = deployments
    config.pop("definitions", None)
    # Each generated deployment names its own campaign and store: of the build steps keep the
    # ones creating the shared budgets and crash detection (not the check of
    # COLDSEND_CAMPAIGN_ID & co.), the budgets' step given each sync's own lead store (a
    # deployment's own build replaces the file's, as for a user deploying several stores); runs killed before their first heartbeat are crashed after
    # NEVER_STARTED here, not the shipped 10 minutes.
    build = []
    for step in config["build"]:
        if "flows.crash_detection.create_crash_detection" in step:
            step["flows.crash_detection.create_crash_detection"]["never_started_minutes"] = (
                NEVER_STARTED.total_seconds() / 60
            )
        if "app.steps.require_values" not in step:
            build.append(step)
    config["build"] = build
    for sync in deployments[:-1]:
        sync["build"] = [
            {name: {**args, "lead_store": sync["parameters"]["lead_store"]}}
            if name == "flows.budgets.create_api_budgets"
            else {name: args}
            for step in build
            for name, args in step.items()
        ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _valid(emails: list[str]) -> set[str]:
    return {e.strip().lower() for e in emails if "@" in e and "." in e.split("@")[-1]}


def _campaign_emails(client: ColdSendClient, campaign_id: str) -> list[str]:
    with client.export_leads(campaign_id) as rows:
        return [row.email for row in rows]


def test_twelve_syncs_on_postgres_with_three_workers_survive_a_killed_worker(
    tmp_path: Path,
    postgres: ThrowawayPostgres,
    coldsend_sandbox: ColdSendControl,
    salesforce_sandbox: SalesforceSandbox,
    sheets_sandbox: SheetsSandbox,
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    tag = uuid.uuid4().hex[:8]
    started = time.monotonic()
    coldsend_sandbox.reset_stats()
    sheets_sandbox.reset_stats()
    hubspot_sandbox.reset_stats()
    # Upload jobs that take a few seconds, so the worker dies with syncs in flight.
    jobs_before = coldsend_sandbox.set_jobs(rows_per_second=max(LEADS / 6, 1.0))

    with ColdSendClient(coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url) as admin:
        inbox = admin.create_smtp_inbox(
            email_address=f"scale-{tag}@acme.example",
            display_name="Acme",
            smtp_host="smtp.acme.example",
            smtp_port=587,
            smtp_username="sales",
            smtp_password="not-a-real-password",
        )
        campaigns: list[str] = []
        for i in range(4 * STORES_PER_KIND):
            cid = admin.create_campaign(name=f"Scale {tag} #{i}").campaign_id
            admin.update_campaign(cid, inbox_ids=[inbox.inbox_id], variants=[VARIANT])
            campaigns.append(cid)
    api_key = coldsend_sandbox.new_key(FLOW_SCOPES)

    # -- twelve lead stores, each with its own leads (some invalid) and what should arrive
    expected: dict[str, set[str]] = {}
    stores: list[tuple[str, object]] = []
    for i in range(STORES_PER_KIND):
        company = f"Scale {tag} sf{i}"
        emails = [f"sf{i}.{n}.{tag}@example.com" for n in range(LEADS)] + ["not-an-email"]
        salesforce_sandbox.insert(
            [
                {"Email": e, "FirstName": f"F{n}", "LastName": f"L{n}", "Company": company}
                for n, e in enumerate(emails)
            ]
        )
        stores.append(
            (
                f"salesforce-leads/scale-sf{i}",
                SalesforceLeads(
                    credentials=SalesforceCredentials(**salesforce_sandbox.connection_kwargs()),
                    filters=[("Company", "=", company)],
                ),
            )
        )
        expected[stores[-1][0]] = _valid(emails)
    for i in range(STORES_PER_KIND):
        emails = [f"sheet{i}.{n}.{tag}@example.com" for n in range(LEADS)] + ["nobody@"]
        rows = [["Email", "First Name", "Company"]] + [
            [e, f"S{n}", "Acme"] for n, e in enumerate(emails)
        ]
        sheet_id = sheets_sandbox.create_spreadsheet(f"Scale {tag} {i}", {"Sheet1": rows})
        stores.append(
            (
                f"google-sheet-leads/scale-sheet{i}",
                GoogleSheetLeads(
                    credentials=GoogleSheetsCredentials(api_base_url=sheets_sandbox.url),
                    spreadsheet_id=sheet_id,
                ),
            )
        )
        expected[stores[-1][0]] = _valid(emails)
    for i in range(STORES_PER_KIND):
        emails = [f"csv{i}.{n}.{tag}@example.com" for n in range(LEADS)] + ["also bad"]
        path = tmp_path / f"leads{i}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Email", "First Name"])
            writer.writerows([e, f"C{n}"] for n, e in enumerate(emails))
        stores.append((f"csv-file-leads/scale-csv{i}", CsvFileLeads(path=str(path))))
        expected[stores[-1][0]] = _valid(emails)
    for i in range(STORES_PER_KIND):
        company = f"Scale {tag} hs{i}"
        emails = [f"hs{i}.{n}.{tag}@example.com" for n in range(LEADS)] + ["hs-not-an-email"]
        hubspot_sandbox.add_contacts(
            [{"email": e, "firstname": f"H{n}", "company": company} for n, e in enumerate(emails)]
        )
        stores.append(
            (
                f"hubspot-contacts/scale-hs{i}",
                HubSpotContacts(
                    credentials=HubSpotCredentials(
                        access_token=hubspot_sandbox.token, base_url=hubspot_sandbox.url
                    ),
                    filters=[("company", "=", company)],
                ),
            )
        )
        expected[stores[-1][0]] = _valid(emails)
    by_campaign = {cid: store for cid, (store, _) in zip(campaigns, stores, strict=True)}

    heartbeat = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
    with PrefectProcesses(tmp_path, extra_env=heartbeat) as prefect:
        prefect.start_server(timeout=180, env={"PREFECT_API_DATABASE_CONNECTION_URL": postgres.url})
        prefect.cli("block", "register", "-m", "blocks")
        with prefect.client_settings():
            ColdSendCredentials(api_key=api_key, base_url=coldsend_sandbox.base_url).save("scale")
            for name, block in stores:
                block.save(name.split("/", 1)[1])  # type: ignore[attr-defined]
        prefect.cli("work-pool", "create", POOL, "--type", "process")
        syncs = [(f"sync-{i}", cid, by_campaign[cid]) for i, cid in enumerate(campaigns)]
        spec = _scale_prefect_yaml(tmp_path / "prefect.yaml", syncs)
        prefect.cli(
            "deploy",
            "--all",
            "--prefect-file",
            str(spec),
            "--no-prompt",
            env={"COLDSEND_BLOCK": "scale"},
            timeout=600,
        )
        deployments = {name: prefect.deployment(SYNC_FLOW, name) for name, _, _ in syncs}
        for dep in deployments.values():
            assert [s["schedule"]["interval"] for s in dep["schedules"]] == [900.0]
            assert dep["global_concurrency_limit"]["limit"] == 1
        # ... and the crash-detection automations, for the workers' 30 s heartbeat.
        automations = {a["name"]: a for a in prefect.post("/automations/filter", {})}
        zombie = automations["prefect-coldsend: crash zombie flow runs"]
        assert zombie["trigger"]["within"] == 3 * HEARTBEAT_SECONDS
        never = automations["prefect-coldsend: crash flow runs that never started"]
        assert never["trigger"]["within"] == NEVER_STARTED.total_seconds()
        launch_dep = prefect.deployment(*LAUNCH)
        assert launch_dep["work_pool_name"] == POOL
        # The deploy's build steps created the shared budgets: the key's, and those of the
        # Salesforce org, the Google user and the HubSpot app the stores read.
        budgets = {b.name: b for b in coldsend_budgets(api_key)}
        for _, block in stores:
            budgets.update((b.name, b) for b in block.api_budgets())  # type: ignore[attr-defined]
        assert {n.split("-")[0] for n in budgets} == {"coldsend", "salesforce", "google", "hubspot"}
        for budget in budgets.values():
            limit = prefect.get(f"/v2/concurrency_limits/{budget.name}")
            assert limit["limit"] == budget.limit_slots
            assert limit["slot_decay_per_second"] == pytest.approx(budget.decay_slots)
        deployed = time.monotonic()

        workers = [f"worker-{n}" for n in range(WORKERS)]
        for name in workers:
            prefect.start_worker(POOL, name=name)

        # -- all twelve at once, as their schedules would start them
        first_runs = {
            name: prefect.post(f"/deployments/{dep['id']}/create_flow_run", {})["id"]
            for name, dep in deployments.items()
        }

        # -- the first worker seen running a sync dies with everything it started
        def busy_worker() -> str | None:
            running = prefect.post(
                "/flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 200},
            )
            pids = {
                int(str(r["infrastructure_pid"]).rsplit(":", 1)[-1])
                for r in running
                if r.get("infrastructure_pid")
            }
            for name in workers:
                child = prefect.children[name]
                if pids & set(_children_of(child.proc.pid)):
                    return name
            return None

        victim = prefect.wait_for(
            "a worker to be running a flow run", busy_worker, timeout=RUN_TIMEOUT, interval=0.5
        )
        killed_at = time.monotonic()
        killed = prefect.children[victim].kill()
        assert killed, "the victim worker had started no flow run process"

        # -- every run ends (syncs and the launches they triggered): completed, or crashed
        # by the zombie automation when the dead worker had it
        def started_runs() -> list[dict[str, Any]]:
            # Not the schedules' future runs (15 minutes ahead), which stay Scheduled.
            runs = prefect.flow_runs(scheduled=None)
            return [r for r in runs if not (r["auto_scheduled"] and r["state_type"] == "SCHEDULED")]

        def all_ended() -> list[dict[str, Any]] | None:
            runs = started_runs()
            done = all(r["state_type"] in TERMINAL for r in runs)
            return runs if done else None

        def states() -> str:
            return str(sorted((r["name"], r["state_name"]) for r in started_runs()))

        wave = prefect.wait_for(
            "every flow run to end (killed ones marked Crashed by the zombie automation)",
            all_ended,
            timeout=RUN_TIMEOUT + NEVER_STARTED.seconds * 2,
            detail=states,
        )
        crashed = [r for r in wave if r["state_type"] == "CRASHED"]
        assert [r for r in crashed if r["id"] in first_runs.values()], (
            f"no sync crashed when {victim} died: {states()}"
        )
        assert {r["state_type"] for r in wave} <= {"COMPLETED", "CRASHED"}, states()
        recovered = time.monotonic()

        # -- the rerun: each crashed run again (same deployment, same parameters)
        reruns = [
            prefect.post(
                f"/deployments/{r['deployment_id']}/create_flow_run",
                {"parameters": r["parameters"]},
            )["id"]
            for r in crashed
        ]
        for run_id in reruns:
            prefect.wait_for_run(run_id, timeout=RUN_TIMEOUT)

        # -- converged: every campaign holds exactly its leads, and was launched
        with ColdSendClient(
            coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url
        ) as admin:
            for cid in campaigns:
                emails = _campaign_emails(admin, cid)
                assert len(emails) == len(set(emails)), f"duplicates in {by_campaign[cid]}"
                assert set(emails) == expected[by_campaign[cid]], by_campaign[cid]

            def all_launched() -> bool:
                return all(admin.get_campaign(cid).status == "ACTIVE" for cid in campaigns)

            prefect.wait_for(
                "every campaign to be launched by launch-on-sync",
                all_launched,
                timeout=RUN_TIMEOUT,
                interval=3,
            )
        converged = time.monotonic()

        # -- budgets held, and PostgreSQL carried the load
        rate_limited = coldsend_sandbox.stats()["rate_limited"]
        assert rate_limited == 0, f"ColdSend answered 429 {rate_limited} times"
        assert sheets_sandbox.stats().get("rate_limited", 0) == 0
        assert hubspot_sandbox.stats()["rate_limited"] == {}
        logs = {n: c.log.read_text(errors="replace") for n, c in prefect.children.items()}
        locked = [n for n, text in logs.items() if "database is locked" in text]
        assert not locked, f"'database is locked' in {locked}"
        assert "database is locked" not in postgres.log_text()
        for name, text in logs.items():
            assert api_key not in text, name
            assert hubspot_sandbox.token not in text, name

    coldsend_sandbox.set_jobs(rows_per_second=jobs_before["rows_per_second"])
    print(
        f"scale e2e: {len(campaigns)} syncs x {LEADS} leads on {WORKERS} workers; "
        f"deployed after {deployed - started:.0f} s; {victim} killed "
        f"{killed_at - deployed:.0f} s after the workers started ({len(killed)} processes); "
        f"{len(crashed)} crashed runs detected {recovered - killed_at:.0f} s after the kill; "
        f"converged {converged - recovered:.0f} s later; total {converged - started:.0f} s"
    )
