"""End to end: deployments/prefect.yaml on a real Prefect server with a process worker.

Everything a user types is run as a command against a `prefect server start` of its own:
`prefect block register -m blocks`, `prefect work-pool create`, `prefect deploy --all`,
`prefect worker start`, `prefect deployment run`. The three sandboxes run in this process
(the session fixtures); the worker's flow runs reach them over loopback. One test, because
each stage needs the state the previous one left (about 1.5 to 3 minutes here).

COLDSEND_E2E_LEADS sets how many Salesforce leads are seeded (default 40).
"""

from __future__ import annotations

import csv
import functools
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    SalesforceCredentials,
    SalesforceLeads,
)
from blocks.budgets import coldsend_budgets
from connectors.coldsend import ColdSendClient
from sandbox.coldsend.fixtures import ColdSendControl
from sandbox.salesforce.fixtures import SalesforceSandbox
from tests._stack import FLOW_SCOPES
from tests.e2e._prefect import PrefectProcesses, deployed_run_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LEADS = int(os.environ.get("COLDSEND_E2E_LEADS", "40"))
POOL = "coldsend-process"
SYNC = ("sync-leads-to-campaign", "sync-every-15-minutes")
WRITE_BACK = ("write-back-campaign-statuses", "write-back-hourly")
LAUNCH = ("launch-campaign-when-ready", "launch-on-sync")
PIPELINE = ("crm-to-campaign-pipeline", "pipeline-on-crm-event")
FOLLOW_UP = ("create-follow-up-task", "follow-up-on-reply")
# A flow run pays for a fresh Python with Prefect imported (5 to 15 s on a busy 2-core box).
RUN_TIMEOUT = 150.0
VARIANT = {
    "variant_name": "A",
    "subject_template": "Hello {{first_name}}",
    "email_content": "Hi {{first_name}}, a short note about {{company}}.",
    "distribution_percent": 100,
}


def _valid_emails(records: list[dict[str, Any]]) -> set[str]:
    return {
        r["Email"].strip().lower()
        for r in records
        if r.get("Email") and "@" in r["Email"] and "." in r["Email"].split("@")[-1]
    }


def _campaign_leads(client: ColdSendClient, campaign_id: str) -> dict[str, Any]:
    with client.export_leads(campaign_id) as rows:
        return {row.email: row for row in rows}


def _find_campaign(client: ColdSendClient, name: str) -> str | None:
    found = [c.campaign_id for c in client.iter_campaigns(search=name) if c.name == name]
    assert len(found) <= 1, f"{len(found)} campaigns named {name!r}"
    return found[0] if found else None


@pytest.fixture
def admin(coldsend_sandbox: ColdSendControl) -> Iterator[ColdSendClient]:
    """A ColdSend client with every scope, for setting up and inspecting the account."""
    with ColdSendClient(coldsend_sandbox.admin_key, base_url=coldsend_sandbox.base_url) as client:
        yield client


class Phases:
    """Wall time per stage, printed at the end (shown with -s, and on failure)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.times: list[tuple[str, float]] = []

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        rows = [f"  {name:<40} {secs:6.1f} s" for name, secs in self.times]
        total = time.monotonic() - self.start
        return "e2e stages:\n" + "\n".join(rows) + f"\n  {'total':<40} {total:6.1f} s"


@pytest.fixture
def phases() -> Iterator[Phases]:
    timer = Phases()
    yield timer
    print(timer)


def test_deployments_run_on_a_real_server_and_worker(
    tmp_path: Path,
    coldsend_sandbox: ColdSendControl,
    salesforce_sandbox: SalesforceSandbox,
    admin: ColdSendClient,
    phases: Phases,
) -> None:
    tag = uuid.uuid4().hex[:8]
    # -- the outside world: a CRM with leads, a ColdSend account with an inbox and a campaign
    salesforce_sandbox.seed(LEADS, seed=5, bad_every=10)
    sf_valid = _valid_emails(salesforce_sandbox.records())
    assert 0 < len(sf_valid) < LEADS  # some rows are bad on purpose

    inbox = admin.create_smtp_inbox(
        email_address=f"sales-{tag}@acme.example",
        display_name="Acme Sales",
        smtp_host="smtp.acme.example",
        smtp_port=587,
        smtp_username="sales",
        smtp_password="not-a-real-password",
    )
    campaign_id = admin.create_campaign(name=f"E2E scheduled sync {tag}").campaign_id
    admin.update_campaign(campaign_id, inbox_ids=[inbox.inbox_id], variants=[VARIANT])
    api_key = coldsend_sandbox.new_key(FLOW_SCOPES)

    signups = tmp_path / "signups.csv"
    csv_valid = {f"signup{i}.{tag}@example.org" for i in range(8)}
    with signups.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Email", "First Name", "Last Name", "Company"])
        for i, email in enumerate(sorted(csv_valid)):
            writer.writerow([email, f"Signup{i}", "Person", "Example Org"])
        writer.writerow(["not-an-email", "Bad", "Row", "Nowhere"])

    phases.done("sandboxes seeded, ColdSend account set up")

    with PrefectProcesses(tmp_path) as prefect:
        prefect.start_server()
        phases.done("prefect server start (to /api/health)")

        # -- blocks: the register command creates the types, then configured blocks are saved
        assert prefect.api.get("/block_types/slug/salesforce-leads").status_code == 404
        prefect.cli("block", "register", "-m", "blocks")
        for slug in (
            "coldsend-credentials",
            "salesforce-credentials",
            "salesforce-leads",
            "google-sheets-credentials",
            "google-sheet-leads",
            "csv-file-leads",
        ):
            assert prefect.api.get(f"/block_types/slug/{slug}").status_code == 200, slug
        with prefect.client_settings():
            ColdSendCredentials(api_key=api_key, base_url=coldsend_sandbox.base_url).save("e2e")
            SalesforceLeads(
                credentials=SalesforceCredentials(**salesforce_sandbox.connection_kwargs())
            ).save("crm")
            CsvFileLeads(path=str(signups)).save("signups")
        phases.done("prefect block register + blocks saved")

        # -- the work pool and the deployments, exactly as the README has users do it
        prefect.cli("work-pool", "create", POOL, "--type", "process")
        deployed_at = datetime.now(UTC)
        prefect.cli(
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--no-prompt",
            env={
                "COLDSEND_CAMPAIGN_ID": campaign_id,
                "COLDSEND_LEAD_STORE": "salesforce-leads/crm",
                "COLDSEND_BLOCK": "e2e",
            },
        )
        sync_dep = prefect.deployment(*SYNC)
        write_back_dep = prefect.deployment(*WRITE_BACK)
        launch_dep = prefect.deployment(*LAUNCH)
        pipeline_dep = prefect.deployment(*PIPELINE)
        follow_up_dep = prefect.deployment(*FOLLOW_UP)
        assert sync_dep["parameters"] == {
            "campaign_id": campaign_id,
            "lead_store": "salesforce-leads/crm",
            "coldsend": "e2e",
        }
        assert [s["schedule"]["interval"] for s in sync_dep["schedules"]] == [900.0]
        assert [s["schedule"]["interval"] for s in write_back_dep["schedules"]] == [3600.0]
        assert sync_dep["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        assert sync_dep["global_concurrency_limit"]["limit"] == 1
        assert {d["work_pool_name"] for d in (sync_dep, launch_dep, pipeline_dep)} == {POOL}
        # The deploy's build step created the key's shared API budget (flows/budgets.py).
        for budget in coldsend_budgets(api_key):
            limit = prefect.get(f"/v2/concurrency_limits/{budget.name}")
            assert (limit["limit"], limit["active"]) == (budget.limit_slots, True)

        # The schedules stay on: their first runs are an interval after the deploy, later
        # than this test lasts; step 5 checks that nothing else ran and then pauses them.
        phases.done("work pool, prefect deploy --all")

        prefect.start_worker(POOL)

        # -- 1. the scheduled sync, run on demand
        sync_run = deployed_run_id(prefect.cli("deployment", "run", "/".join(SYNC)))
        prefect.wait_for_run(sync_run, timeout=RUN_TIMEOUT)
        leads = _campaign_leads(admin, campaign_id)
        assert set(leads) == sf_valid
        crm_ids = {r["Id"] for r in salesforce_sandbox.records() if r["Email"]}
        assert {row.custom_fields.get("crm_record_id") for row in leads.values()} <= crm_ids
        phases.done("sync deployment run")

        # -- 2. the sync's event fired launch-on-sync with the templated parameters
        synced = prefect.wait_for(
            "the sync's coldsend.leads.synced event",
            lambda: [
                e
                for e in prefect.events("coldsend.leads.synced")
                if e["payload"]["campaign_id"] == campaign_id
            ],
            timeout=30,
        )
        job_ids = synced[0]["payload"]["job_ids"]
        assert job_ids and synced[0]["payload"]["uploaded"] == len(sf_valid)

        def launch_run_for(cid: str) -> dict[str, Any] | None:
            runs = prefect.flow_runs(launch_dep["id"], scheduled=None)
            mine = [r for r in runs if r["parameters"].get("campaign_id") == cid]
            return mine[0] if mine else None

        launch_run = prefect.wait_for(
            "the launch-on-sync trigger to create a launch run",
            lambda: launch_run_for(campaign_id),
            timeout=60,
        )
        # The trigger keeps the payload's types: job_ids arrives as a list, not its repr.
        assert launch_run["parameters"]["job_ids"] == job_ids
        assert launch_run["parameters"]["coldsend"] == "e2e"
        prefect.wait_for_run(launch_run["id"], timeout=RUN_TIMEOUT)
        assert admin.get_campaign(campaign_id).status == "ACTIVE"
        phases.done("launch-on-sync triggered and completed")

        # -- 3. an external CRM event runs the pipeline: ensure a campaign, sync, launch
        spec: dict[str, Any] = {
            "name": f"E2E signups from the CRM {tag}",
            "inbox_emails": [inbox.email_address],
            "variants": [VARIANT],
        }
        prefect.post_event(
            "crm.lead.created",
            f"crm.lead.{tag}",
            {"campaign": spec, "lead_store": "csv-file-leads/signups"},
        )
        pipeline_run = prefect.wait_for(
            "the crm.lead.created trigger to create a pipeline run",
            lambda: next(iter(prefect.flow_runs(pipeline_dep["id"], scheduled=None)), None),
            timeout=60,
        )
        assert pipeline_run["parameters"]["campaign"] == spec
        assert pipeline_run["parameters"]["lead_store"] == "csv-file-leads/signups"
        prefect.wait_for_run(pipeline_run["id"], timeout=RUN_TIMEOUT)
        new_campaign = _find_campaign(admin, spec["name"])
        assert new_campaign is not None
        assert set(_campaign_leads(admin, new_campaign)) == csv_valid
        assert admin.get_campaign(new_campaign).status == "ACTIVE"
        # The pipeline's sync announced itself too: launch-on-sync runs for the new campaign,
        # finds it launched already and succeeds without doing anything.
        second_launch = prefect.wait_for(
            "launch-on-sync for the pipeline's campaign",
            lambda: launch_run_for(new_campaign),
            timeout=60,
        )
        prefect.wait_for_run(second_launch["id"], timeout=RUN_TIMEOUT)
        phases.done("crm.lead.created -> pipeline (+ its launch)")

        # -- 4. a simulated few days of sending, then the hourly write-back, run on demand
        coldsend_sandbox.advance(steps=4)
        exported = _campaign_leads(admin, campaign_id)
        statuses = {
            str(row.custom_fields["crm_record_id"]): str(row.status) for row in exported.values()
        }
        assert len(statuses) == len(exported)
        assert len(set(statuses.values()) - {"PENDING", "QUEUED"}) >= 2, statuses
        # A reply with text, on top of what the simulation produced: at least one to log.
        replier = next(
            row.email
            for row in exported.values()
            if str(row.status) not in ("BOUNCED", "UNSUBSCRIBED", "FAILED")
        )
        coldsend_sandbox.add_reply(campaign_id, replier, "Sounds good, call me Tuesday.")
        statuses[str(exported[replier].custom_fields["crm_record_id"])] = "REPLIED"
        write_back_run = deployed_run_id(prefect.cli("deployment", "run", "/".join(WRITE_BACK)))
        prefect.wait_for_run(write_back_run, timeout=RUN_TIMEOUT)
        records = salesforce_sandbox.by_id()
        assert {rid: records[rid]["ColdSend_Status__c"] for rid in statuses} == statuses
        for rid, status in statuses.items():
            record = records[rid]
            assert bool(record["ColdSend_Replied__c"]) == (status == "REPLIED"), record
            assert bool(record["HasOptedOutOfEmail"]) == (status == "UNSUBSCRIBED"), record
            assert bool(record["ColdSend_Bounced__c"]) == (status == "BOUNCED"), record
        # Rejected rows and in-source duplicates never reached the campaign: left alone.
        untouched = [r for rid, r in records.items() if rid not in statuses]
        assert untouched and all(not r["ColdSend_Status__c"] for r in untouched)
        phases.done("advance + write-back deployment run")

        # -- 4b. each reply logged as a Task emits coldsend.lead.replied; the follow-up-on-reply
        # trigger turns each into one open follow-up Task for the record's owner.
        tasks = salesforce_sandbox.records("Task")
        replied_ids = {rid for rid, status in statuses.items() if status == "REPLIED"}
        logged = [t for t in tasks if t["Subject"].startswith("Reply: ")]
        assert {t["WhoId"] for t in logged} == replied_ids, tasks
        follow_up_runs = prefect.wait_for(
            f"the coldsend.lead.replied trigger to create {len(logged)} follow-up runs",
            lambda: (
                runs
                if len(runs := prefect.flow_runs(follow_up_dep["id"], scheduled=None))
                >= len(logged)
                else None
            ),
            timeout=90,
        )
        assert len(follow_up_runs) == len(logged)
        for run in follow_up_runs:
            prefect.wait_for_run(run["id"], timeout=RUN_TIMEOUT)
        follow_ups = [
            t for t in salesforce_sandbox.records("Task") if t["Subject"].startswith("Follow up: ")
        ]
        assert sorted(t["WhoId"] for t in follow_ups) == sorted(replied_ids)
        assert {t["Status"] for t in follow_ups} == {"Not Started"}
        phases.done("follow-up-on-reply triggered and completed")

        # -- 5. what ran: exactly the runs the test asked for (and the pipeline's subflows)
        expected = {
            sync_dep["id"]: [sync_run],
            write_back_dep["id"]: [write_back_run],
            launch_dep["id"]: sorted([launch_run["id"], second_launch["id"]]),
            pipeline_dep["id"]: [pipeline_run["id"]],
            follow_up_dep["id"]: sorted(r["id"] for r in follow_up_runs),
        }
        everything = prefect.flow_runs()
        for deployment_id, run_ids in expected.items():
            ran = [r for r in everything if r["deployment_id"] == deployment_id]
            assert sorted(r["id"] for r in ran) == run_ids, [
                (r["name"], r["state_type"], r["expected_start_time"]) for r in ran
            ]
        others = [r for r in everything if r["deployment_id"] not in expected]
        assert others and all(r["parent_task_run_id"] for r in others)  # subflows only
        unfinished = [
            (r["name"], r["state_type"]) for r in everything if r["state_type"] != "COMPLETED"
        ]
        assert not unfinished, unfinished

        # -- 6. the interval schedules are live: the server's scheduler queued future runs,
        # none due before an interval has passed; `schedule pause --all` withdraws them.
        for dep, interval in ((sync_dep, 900), (write_back_dep, 3600)):
            queued = prefect.wait_for(
                f"the scheduler to queue runs of {dep['name']}",
                functools.partial(prefect.scheduled_runs, dep["id"]),
                timeout=60,
                detail=prefect.scheduler_hint,
            )
            first = min(datetime.fromisoformat(r["expected_start_time"]) for r in queued)
            assert first >= deployed_at + timedelta(seconds=interval - 5), (dep["name"], first)
        prefect.cli("deployment", "schedule", "pause", "--all")
        for dep in (prefect.deployment(*SYNC), prefect.deployment(*WRITE_BACK)):
            assert [s["active"] for s in dep["schedules"]] == [False]
            assert prefect.scheduled_runs(dep["id"]) == []
        phases.done("what ran; schedules live, then paused")

        # Secrets went through blocks only: no server, worker or flow-run output shows them.
        for child in prefect.children.values():
            output = child.log.read_text(errors="replace")
            assert api_key not in output, child.name
            assert salesforce_sandbox.client_secret not in output, child.name
