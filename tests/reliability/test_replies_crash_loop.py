"""Exactly once under SIGKILL: the write-back logging replies, killed at random points and rerun.

Uses the crash-loop machinery of test_crash_loop (children started ahead, kills spread over a
measured run). Each cycle new replies arrive (new leads replying, and leads that replied
before replying again) before the write-back runs and is killed. Checked after every attempt,
killed or not: no reply logged twice (each ColdSend reply id on at most one Task). Checked
after each completed run: every reply of every lead with a record is on exactly one Task, on
that lead's record. COLDSEND_REPLY_CRASH_RUNS (default 8) sets the number of killed runs.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.sync import sync_leads_to_campaign
from tests._stack import Stack
from tests.reliability import test_crash_loop as crash
from tests.reliability._world import FIGURES, env_int, make_world

RUNS = env_int("COLDSEND_REPLY_CRASH_RUNS", 8)


def test_reply_logging_killed_at_random_points_logs_each_reply_once(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crash, "RUNS", RUNS)
    started = time.monotonic()
    world = make_world(stack, "salesforce", 60, seed=777)
    assert sync_leads_to_campaign(
        campaign_id=world.campaign_id, lead_store=world.store, coldsend=stack.coldsend_block
    ).uploaded
    # The record each campaign lead came from (the id the sync stored with it).
    record_of = {lead.email: lead.source_id or "" for lead in world.campaign_leads()}
    rng = random.Random(f"{crash.SEED}:replies")
    # 40 ms a Salesforce request: the key lookups and Task creates take a while.
    stack.salesforce.set_faults(latency_ms=40)
    spec = {
        "flow": "write-back",
        "parameters": {
            "campaign_id": world.campaign_id,
            "lead_store": world.store,
            "coldsend": stack.coldsend_block,
        },
    }
    expected: dict[str, str] = {}  # ColdSend reply id -> the record it must be logged on
    clock = [0]

    def before_cycle(cycle: int) -> None:
        for email in rng.sample(sorted(record_of), 8):
            clock[0] += 1
            detail = stack.coldsend.add_reply(
                world.campaign_id,
                email,
                f"cycle {cycle}: =SUM(A1:A9) {rng.random():.6f}",
                received_at=f"2026-07-01T00:{clock[0] // 60:02d}:{clock[0] % 60:02d}Z",
            )
            for reply in detail["replies"]:
                expected[reply["reply_id"]] = record_of[email]

    def logged() -> Counter[str]:
        return Counter(str(t["ColdSend_Reply_Id__c"]) for t in stack.salesforce.records("Task"))

    def check_safe(_: Any) -> None:
        twice = {k: n for k, n in logged().items() if n > 1}
        assert not twice, f"replies logged more than once: {twice}"

    def check_exact(_: Any) -> None:
        tasks = stack.salesforce.records("Task")
        on = {
            str(t["ColdSend_Reply_Id__c"]).removeprefix("coldsend-reply:"): t["WhoId"]
            for t in tasks
        }
        want = {rid: who for rid, who in expected.items() if who}
        assert on == want
        check_safe(None)

    pool = crash.Pool(spec, tmp_path)
    try:
        figures = crash._loop(
            "write-back",
            stack,
            world,
            pool,
            before_cycle=before_cycle,
            check_safe=check_safe,
            check_exact=check_exact,
        )
    finally:
        pool.close()
        stack.salesforce.set_faults()
    figures["flow"] = "write-back (replies)"
    figures["replies"] = len(expected)
    figures["total_s"] = round(time.monotonic() - started, 1)
    FIGURES.append(figures)
    assert figures["kills"] == RUNS
    assert any(p != "starting (no API call yet)" for p in figures["kill_phases"])
