"""Crash loops: SIGKILL the flow's process at random points, rerun, and demand the exact end state.

Each flow runs in a child process (`tests.reliability._runner`) against this session's
sandboxes and Prefect test server. Children are started one ahead and wait, imports done,
for GO. Kill points are counted in the run's own API requests, not in seconds: an undisturbed
run of the same shape is counted first, and each kill comes (seeded) once the sandboxes have
received a drawn number of this run's requests, so kills land in every phase (reading and
reconciling, uploads and polls, CRM reads and writes) however slow a busy machine makes the
run. Some kills come by time within the run's start-up, before its first request. After each
kill the next child runs (and may itself be killed) until one completes.

Checked after every attempt, killed or not: no lead uploaded that should not be, none twice,
none re-created or reset; no CRM status moved backwards. Checked after each completed run: the
exact end state. COLDSEND_CRASH_RUNS (default 20) sets the number of killed runs per flow;
COLDSEND_CRASH_SEED the seed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prefect.settings
import pytest

from connectors.leads import LeadStatus, status_rank
from tests._stack import Stack
from tests.reliability._world import (
    FIGURES,
    SyncSnapshot,
    World,
    check_never_backwards,
    check_sync_exact,
    check_sync_safe,
    check_write_back_exact,
    env_int,
    expected_statuses,
    make_world,
)

ROOT = Path(__file__).resolve().parents[2]
RUNS = env_int("COLDSEND_CRASH_RUNS", 20)
SEED = env_int("COLDSEND_CRASH_SEED", 20240601)
RERUN_KILL_CHANCE = 0.2  # a rerun is itself killed this often (at most twice per cycle)


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL a run: after some seconds (start-up), or once the sandboxes have received
    `at_request` of its requests (counted by `requests`, the sandboxes' running total)."""

    after_seconds: float | None = None
    at_request: int | None = None
    requests: Any = None


@dataclass
class Attempt:
    killed: bool
    completed: bool
    seconds: float
    result: str
    started: float = 0.0


class Child:
    """One flow process, started ahead of time; it runs the flow once when told GO."""

    def __init__(self, spec: dict[str, Any], env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability._runner", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "READY", f"child did not start: {line!r} (log: {self._log.name})"

    def go(self, kill: Kill | None, timeout: float = 180.0) -> Attempt:
        assert self.proc.stdin is not None
        base = kill.requests() if kill and kill.requests else 0
        started = time.monotonic()
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()
        killed = False
        try:
            out = self._wait(kill, base, started + timeout)
            if out is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                out, _ = self.proc.communicate()
                killed = True
        finally:
            self._log.close()
        seconds = time.monotonic() - started
        result = next((line for line in out.splitlines() if line.startswith("RESULT")), "")
        if kill is None and not result:
            raise AssertionError(f"child ended without a result (log: {self._log.name})")
        return Attempt(killed, self.proc.returncode == 0, seconds, result, started)

    def _wait(self, kill: Kill | None, base: int, deadline: float) -> str | None:
        """The child's output once it ends, or None when the kill point came first."""
        if kill is None or kill.after_seconds is not None:
            wait = deadline - time.monotonic() if kill is None else kill.after_seconds
            try:
                return self.proc.communicate(timeout=wait)[0]
            except subprocess.TimeoutExpired:
                return None
        assert kill.requests is not None and kill.at_request is not None
        while True:
            try:
                return self.proc.communicate(timeout=0.02)[0]
            except subprocess.TimeoutExpired:
                # communicate() may be called again after a timeout without losing output.
                if kill.requests() - base >= kill.at_request:
                    return None
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"child neither ended nor reached request {kill.at_request} "
                        f"(log: {self._log.name})"
                    ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()
        self._log.close()


class Pool:
    """Keeps one child started ahead, so a run never waits for Python and Prefect to import."""

    def __init__(self, spec: dict[str, Any], tmp: Path) -> None:
        self.spec = spec
        self.tmp = tmp
        self.env = dict(
            os.environ,
            PREFECT_API_URL=str(prefect.settings.PREFECT_API_URL.value()),
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        self.started = 0
        self._next = self._spawn()

    def _spawn(self) -> Child:
        self.started += 1
        return Child(self.spec, self.env, self.tmp / f"child-{self.started}.log")

    def run(self, kill: Kill | None) -> Attempt:
        child, self._next = self._next, None  # type: ignore[assignment]
        child.ready()
        self._next = self._spawn()
        return child.go(kill)

    def close(self) -> None:
        if self._next is not None:
            self._next.stop()


def _phase(flow: str, cs: Counter[str], sf: Counter[str]) -> str:
    """Where a killed run was, from the requests the sandboxes had received from it."""
    uploads = sum(n for k, n in cs.items() if k.startswith("POST") and k.endswith("/leads"))
    polls = sum(n for k, n in cs.items() if k.endswith("/upload/{job_id}"))
    exports = sum(n for k, n in cs.items() if k.endswith("/export"))
    writes = sum(n for k, n in sf.items() if k.startswith("PATCH") or "ingest" in k)
    reads = sum(n for k, n in sf.items() if "/query" in k)
    if flow == "sync":
        if uploads:
            return "uploading or polling" if polls < uploads else "polled every job, finishing"
        if exports or reads:
            return "reading and reconciling"
        return "starting (no API call yet)"
    if writes:
        return "writing CRM records"
    if reads:
        return "reading CRM records"
    if exports:
        return "exported statuses"
    return "starting (no API call yet)"


def _inline(flow: str, parameters: dict[str, Any]) -> Attempt:
    from flows.sync import sync_leads_to_campaign
    from flows.write_back import write_back_statuses

    fn: Any = sync_leads_to_campaign if flow == "sync" else write_back_statuses
    started = time.monotonic()
    state = fn(**parameters, return_state=True)
    seconds = time.monotonic() - started
    return Attempt(False, state.is_completed(), seconds, f"RESULT {state.type} {state.message}")


class _RequestWatch:
    """Samples the sandboxes' request total in a thread; remembers when it first moved."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.base = _total(stack)
        self.first = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = _total(self.stack)
            except OSError:  # the sandboxes went away: the test is failing anyway
                return
            if now != self.base:
                self.first = time.monotonic()
                return
            time.sleep(0.03)

    def stop(self) -> tuple[float, int]:
        """When the run's first request came, and how many requests it made."""
        self._stop.set()
        self._thread.join(5)
        assert self.first, "the calibration run made no API request"
        return self.first, _total(self.stack) - self.base


def _total(stack: Stack) -> int:
    return int(stack.coldsend.stats()["total"]) + int(stack.salesforce.stats()["total"])


def _watch_requests(stack: Stack) -> _RequestWatch:
    return _RequestWatch(stack)


def _counts(stack: Stack) -> tuple[Counter[str], Counter[str]]:
    cs = Counter(stack.coldsend.stats()["requests"])
    sf = Counter(stack.salesforce.stats()["requests"])
    return cs, sf


def _loop(
    flow: str,
    stack: Stack,
    world: World,
    pool: Pool,
    *,
    before_cycle: Any,
    check_safe: Any,
    check_exact: Any,
) -> dict[str, Any]:
    rng = random.Random(f"{SEED}:{flow}")
    # An undisturbed run of the same shape, watched from the sandboxes, gives the span to spread
    # kill points over: the time from GO to its first API request (start-up), and how many
    # requests it made (the work). Most kills land in the work, counted in requests so that a
    # slow machine stretches the run without moving the kill points out of it; some in start-up.
    state = before_cycle(0)
    active = _watch_requests(stack)
    calibration = pool.run(None)
    first, made = active.stop()
    assert calibration.completed, calibration.result
    check_exact(state)
    startup = first - calibration.started
    requests = functools.partial(_total, stack)

    def kill_point() -> Kill:
        if rng.random() < 0.15 or made < 2:
            return Kill(after_seconds=rng.uniform(0.0, startup))
        # After request k of the run (1 <= k < all): the last one would let it finish.
        return Kill(at_request=rng.randint(1, made - 1), requests=requests)

    phases: Counter[str] = Counter()
    kills = 0
    attempts = 0
    child_runs = 1
    cycles = 0
    durations: list[float] = []
    finished_early = 0
    while kills < RUNS:
        cycles += 1
        assert cycles <= RUNS * 2, "too many cycles: kills keep landing after the run finished"
        state = before_cycle(cycles)
        first = True
        rerun_kills = 0
        while True:
            kill = first or (rerun_kills < 2 and rng.random() < RERUN_KILL_CHANCE)
            cs0, sf0 = _counts(stack)
            if kill:
                attempt = pool.run(kill_point())
                child_runs += 1
            else:
                # The run that is left alone runs in this process: same code, same server,
                # same sandboxes, without paying a child's start-up.
                attempt = _inline(flow, pool.spec["parameters"])
            attempts += 1
            if attempt.killed:
                cs1, sf1 = _counts(stack)
                phases[_phase(flow, cs1 - cs0, sf1 - sf0)] += 1
                kills += 1
                rerun_kills += not first
            elif kill:
                finished_early += 1
            check_safe(state)
            first = False
            if attempt.completed:
                durations.append(attempt.seconds)
                break
        check_exact(state)
    return {
        "suite": "crash-loop",
        "flow": flow,
        "kills": kills,
        "cycles": cycles,
        "runs": attempts,
        "child_runs": child_runs,
        "kill_phases": dict(phases),
        "calibration_run_s": round(calibration.seconds, 2),
        "kill_window": {"startup_s": round(startup, 2), "requests": made},
        "finished_before_kill": finished_early,
        "completed_run_s_median": round(sorted(durations)[len(durations) // 2], 2),
    }


def test_sync_killed_at_random_points_converges(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    world = make_world(stack, "salesforce", 0, seed=0)
    # Small parts and jobs at 20 rows/s: a run spends most of its time uploading and polling.
    stack.coldsend.set_jobs(rows_per_second=20)
    spec = {
        "flow": "sync",
        "parameters": {
            "campaign_id": world.campaign_id,
            "lead_store": world.store,
            "coldsend": stack.coldsend_block,
            "rows_per_upload": 4,
        },
    }

    def before_cycle(cycle: int) -> tuple[SyncSnapshot, set[str]]:
        # New leads for every cycle, stamped now (so an incremental read must pick them up),
        # one in six broken.
        records = [
            {
                "FirstName": "Crash",
                "LastName": f"Loop {cycle}-{i}",
                "Company": "Kill -9 Inc",
                "Email": f"crash.{cycle}.{i}@example.net" if i % 6 else f"broken {cycle}.{i}",
            }
            for i in range(12)
        ]
        stack.salesforce.insert(records)
        return SyncSnapshot.take(world), world.source_emails()

    def check_safe(state: tuple[SyncSnapshot, set[str]]) -> None:
        check_sync_safe(world, *state)

    def check_exact(state: tuple[SyncSnapshot, set[str]]) -> None:
        check_sync_exact(world, *state)

    pool = Pool(spec, tmp_path)
    try:
        figures = _loop(
            "sync",
            stack,
            world,
            pool,
            before_cycle=before_cycle,
            check_safe=check_safe,
            check_exact=check_exact,
        )
    finally:
        pool.close()
    figures["leads_in_campaign"] = len(world.campaign_leads())
    figures["total_s"] = round(time.monotonic() - started, 1)
    FIGURES.append(figures)
    assert figures["kill_phases"].get("uploading or polling", 0) > 0


_FORWARD = [
    LeadStatus.PENDING,
    LeadStatus.QUEUED,
    LeadStatus.SENT,
    LeadStatus.OPENED,
    LeadStatus.REPLIED,
]


def _next_status(rng: random.Random, current: LeadStatus) -> LeadStatus:
    """Mostly a step forward; sometimes a final status; sometimes a late, older one."""
    draw = rng.random()
    if draw < 0.1:
        return rng.choice([LeadStatus.BOUNCED, LeadStatus.UNSUBSCRIBED])
    if draw < 0.25:
        return rng.choice(_FORWARD[:3])  # a late event: may be behind what the CRM holds
    rank = status_rank(current)
    ahead = [s for s in _FORWARD if status_rank(s) > rank]
    return ahead[0] if ahead else current


def test_write_back_killed_at_random_points_converges(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    world = make_world(stack, "salesforce", 260, seed=4242)
    from flows.sync import sync_leads_to_campaign

    assert sync_leads_to_campaign(
        campaign_id=world.campaign_id, lead_store=world.store, coldsend=stack.coldsend_block
    ).uploaded
    rng = random.Random(f"{SEED}:statuses")
    # 40 ms a Salesforce request: the reads and the 200-record composite writes take a while.
    stack.salesforce.set_faults(latency_ms=40)
    spec = {
        "flow": "write-back",
        "parameters": {
            "campaign_id": world.campaign_id,
            "lead_store": world.store,
            "coldsend": stack.coldsend_block,
        },
    }
    last: dict[str, Any] = {}

    def before_cycle(cycle: int) -> tuple[dict[str, Any], dict[str, Any]]:
        leads = world.campaign_leads()
        moves = {lead.email: _next_status(rng, lead.status) for lead in leads if rng.random() < 0.9}
        world.set_campaign_statuses(moves)
        crm = world.crm_statuses()
        last["crm"] = crm
        return crm, expected_statuses(world, crm)

    def check_safe(state: tuple[dict[str, Any], dict[str, Any]]) -> None:
        now = world.crm_statuses()
        check_never_backwards(last["crm"], now)
        last["crm"] = now

    def check_exact(state: tuple[dict[str, Any], dict[str, Any]]) -> None:
        check_write_back_exact(world, *state)

    pool = Pool(spec, tmp_path)
    try:
        figures = _loop(
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
    figures["records"] = len(last["crm"])
    figures["total_s"] = round(time.monotonic() - started, 1)
    FIGURES.append(figures)
    assert figures["kill_phases"].get("writing CRM records", 0) > 0


@pytest.fixture(autouse=True)
def _no_other_faults(stack: Stack) -> None:
    stack.salesforce.set_faults()
