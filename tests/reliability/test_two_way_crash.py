"""Two-way sync under SIGKILL: updates and deletes converge, an opt-out is never uploaded.

Each cycle edits Salesforce as people do between syncs (companies edited, a first name
cleared, PENDING leads opting out, new leads, new leads already opted out), then runs the
sync in a child process killed after a random delay, and reruns until one completes. Checked
after every attempt: no lead opted out in the store before it reached the campaign is in it,
and no email twice. Checked after each completed run: the campaign is exactly the store's
opted-in leads, with the store's values. COLDSEND_TWOWAY_CRASH_RUNS (default 3) sets the
number of killed runs.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, cast

from connectors.salesforce import SalesforceConnection
from flows.scopes import FLOW_SCOPES
from tests._stack import Stack
from tests.flows._helpers import key_block
from tests.reliability._world import FIGURES, env_int
from tests.reliability.test_crash_loop import Kill, Pool, _inline

RUNS = env_int("COLDSEND_TWOWAY_CRASH_RUNS", 3)
SEED = env_int("COLDSEND_CRASH_SEED", 20240601)


def _campaign(stack: Stack, campaign_id: str) -> dict[str, Any]:
    with stack.client() as client, client.export_leads(campaign_id) as rows:
        found = list(rows)
    emails = [row.email for row in found]
    assert len(emails) == len(set(emails)), "an email is in the campaign twice"
    return {row.email: row for row in found}


def test_two_way_sync_killed_during_updates_and_deletes_converges(
    stack: Stack, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}:two-way")
    conn = SalesforceConnection(**cast(dict[str, Any], stack.salesforce.connection_kwargs()))

    def update(record_id: str, values: dict[str, Any]) -> None:
        conn.call(lambda client: cast(Any, client).Lead.update(record_id, values))

    ids = stack.salesforce.insert(
        [
            {"Email": f"tw{i}@example.com", "FirstName": f"F{i}", "LastName": "L", "Company": "A"}
            for i in range(40)
        ]
    )
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign("Two-way crash")
    key = key_block(stack, sorted(FLOW_SCOPES["sync"] | {"leads:update", "leads:delete"}), "tw")
    parameters = {"campaign_id": campaign_id, "lead_store": store, "coldsend": key}
    # Slow jobs: a run spends its time in the update upload and its polls, where kills land.
    stack.coldsend.set_jobs(rows_per_second=10)
    first = _inline("sync", parameters)
    assert first.completed, first.result

    opted_out: set[str] = set()  # opted out in Salesforce before ever reaching the campaign
    live = list(ids)
    pool = Pool({"flow": "sync", "parameters": parameters}, tmp_path)
    kills = cycles = attempts = 0
    window = max(2.0, first.seconds)
    try:
        while kills < RUNS:
            cycles += 1
            assert cycles <= RUNS * 3, "kills keep landing after the run finished"
            for record_id in rng.sample(live, 6):
                update(record_id, {"Company": f"Cycle {cycles} {rng.random():.6f}"})
            update(rng.choice(live), {"FirstName": ""})
            for record_id in rng.sample(live, 2):
                update(record_id, {"HasOptedOutOfEmail": True})
                live.remove(record_id)
            fresh = [
                {"Email": f"new{cycles}.{i}@example.com", "LastName": "N", "Company": "B"}
                | ({"HasOptedOutOfEmail": True} if i < 2 else {})
                for i in range(5)
            ]
            new_ids = stack.salesforce.insert(fresh)
            opted_out |= {f"new{cycles}.{i}@example.com" for i in range(2)}
            live += new_ids[2:]
            killed_once = False
            while True:
                if not killed_once or rng.random() < 0.2:
                    attempt = pool.run(Kill(after_seconds=rng.uniform(0.2, window)))
                else:
                    attempt = _inline("sync", parameters)
                attempts += 1
                kills += attempt.killed
                killed_once = True
                now = _campaign(stack, campaign_id)
                assert not opted_out & set(now), "an opted-out lead reached the campaign"
                if attempt.completed:
                    break
            records = {r["Id"]: r for r in stack.salesforce.records()}
            wanted = {records[i]["Email"].lower(): records[i] for i in live}
            now = _campaign(stack, campaign_id)
            assert set(now) == set(wanted)
            for email, row in now.items():
                record = wanted[email]
                assert (row.first_name, row.company) == (
                    record["FirstName"] or "",
                    record["Company"],
                ), email
    finally:
        pool.close()
    FIGURES.append(
        {
            "suite": "two-way-crash",
            "kills": kills,
            "cycles": cycles,
            "runs": attempts,
            "undisturbed_run_s": round(first.seconds, 2),
            "at": time.strftime("%H:%M:%S"),
        }
    )
