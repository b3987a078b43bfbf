"""The fault matrix: sync and write-back against every fault the sandboxes can inject.

Each cell arms one fault, runs the flow in-process on the session's Prefect server, and accepts
exactly two outcomes (issue 6):

- the run Completed, and the end state is exact (every valid lead in the campaign once,
  nothing else, nothing re-created; every status written, none moved backwards); or
- the run Failed with a message naming the cause, left nothing wrong behind (no stray or
  repeated lead, no status moved backwards), and the next run, faults off, Completed with the
  exact end state.

Completed with data missing fails the cell. Each cell also asserts that its fault really hit
the run (injected counts, or the time waited for a rate-limit window), so a cell cannot pass
without exercising what it names.

Rate limits are ColdSend's real ones (100 a minute, 1,000 an hour, fixed clock-aligned
windows, no Retry-After header). The flow's own key has its window spent down first with real
requests, so a small run meets the limit and must wait for the real reset: the cost is the
rest of the current minute (at most ~60 s), paid once per flow.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect.client.schemas.objects import State

from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from sandbox._server import RunningServer
from sandbox.coldsend.fixtures import GENEROUS_PER_HOUR, GENEROUS_PER_MINUTE
from sandbox.salesforce.app import SalesforceSandboxApp
from tests._stack import Stack
from tests.reliability._faults import (
    Injected,
    clear_all_faults,
    injected,
    injector_seed,
    job_seed,
    set_all_faults,
    spend_coldsend_budget,
    spend_coldsend_hour,
)
from tests.reliability._world import (
    FIGURES,
    SyncSnapshot,
    World,
    check_never_backwards,
    check_sync_exact,
    check_sync_safe,
    check_write_back_exact,
    expected_statuses,
    make_world,
)

LEADS = 45  # ~40 valid after the seeded bad rows; 10 rows per part: 4-5 upload jobs
ROWS_PER_UPLOAD = 10


@dataclass
class Ctx:
    """What a cell's arm/evidence functions need."""

    stack: Stack
    world: World
    sf_app: SalesforceSandboxApp
    flow_params: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One fault against one flow.

    Attributes:
        name: Cell id.
        flow: "sync" or "write-back".
        crm: "salesforce" or "sheet".
        arm: Turns the fault on (may set flow parameters in ``ctx.flow_params``).
        hit: Given the faults injected during the run and the context, how many times the
            fault hit (must be > 0).
        failure: Regex a Failed run's message must match: it names the cause.
    """

    name: str
    flow: str
    crm: str
    arm: Callable[[Ctx], None]
    hit: Callable[[Injected, Ctx], int]
    failure: str


# -- arming ------------------------------------------------------------------------------------


def _minute_limit(leave: int) -> Callable[[Ctx], None]:
    def arm(ctx: Ctx) -> None:
        ctx.stack.coldsend.set_limits(per_minute=100, per_hour=1000, retry_after_header=False)
        if 60 - time.time() % 60 < 8:  # too close to a reset for the run to meet the limit
            time.sleep(60.2 - time.time() % 60)
        reset = spend_coldsend_budget(ctx.stack, ctx.stack.api_key, leave=leave)
        ctx.notes["window_left_s"] = round(reset - time.time(), 1)

    return arm


def _minute_hit(found: Injected, ctx: Ctx) -> int:
    # The run must have outlived the window it started in: it waited for the real reset.
    return int(ctx.notes["elapsed_s"] >= ctx.notes["window_left_s"] - 1.0)


def _hour_limit(ctx: Ctx) -> None:
    ctx.stack.coldsend.set_limits(per_minute=100, per_hour=1000, retry_after_header=False)
    reset = spend_coldsend_hour(ctx.stack, ctx.stack.api_key, per_hour=1000)
    ctx.notes["window_left_s"] = round(reset - time.time(), 1)


def _hour_hit(found: Injected, ctx: Ctx) -> int:
    return 1  # every request of the run is over the spent hourly budget


# Request numbers (0-based, per sandbox) a run surely reaches: a write-back makes a handful of
# requests per service, a sync a dozen or more to ColdSend.
_WINDOW = {"sync": (3, 12), "write-back": (1, 5)}


def _errors(flow: str) -> Callable[[Ctx], None]:
    def arm(ctx: Ctx) -> None:
        seed = injector_seed(error_rate=0.10, want=("error",), window=_WINDOW[flow])
        set_all_faults(ctx.stack, error_rate=0.10, error_statuses=[500, 502, 503], seed=seed)

    return arm


def _drops(flow: str) -> Callable[[Ctx], None]:
    def arm(ctx: Ctx) -> None:
        seed = injector_seed(
            drop_rate=0.05, want=("drop_before", "drop_after"), window=_WINDOW[flow]
        )
        set_all_faults(ctx.stack, drop_rate=0.05, drop_after_processing_share=0.5, seed=seed)

    return arm


def _latency(ctx: Ctx) -> None:
    set_all_faults(ctx.stack, latency_ms=200)
    ctx.notes["t0"] = ctx.stack.coldsend.stats()["total"]


def _jobs(ctx: Ctx) -> None:
    seed = job_seed(fail_rate=0.10, stall_rate=0.10, jobs=4)
    ctx.stack.coldsend.set_jobs(fail_rate=0.10, stall_rate=0.10, seed=seed)
    ctx.flow_params["upload_timeout_seconds"] = 4.0


def _jobs_hit(found: Injected, ctx: Ctx) -> int:
    store = ctx.stack.coldsend.server.app.sandbox.store
    with store.tx() as c:
        rows = c.execute(
            "SELECT status, count(*) FROM jobs WHERE campaign_id = ? GROUP BY status",
            (ctx.world.campaign_id,),
        ).fetchall()
    by_status = dict(rows)
    ctx.notes["jobs"] = by_status
    return int(by_status.get("FAILED", 0) > 0 and by_status.get("IN_PROGRESS", 0) > 0)


def _sheets_429(ctx: Ctx) -> None:
    # Google's quota (60 a minute per user) with the window scaled to 1.5 s, plus 429s drawn at
    # 20% on top, in Google's RESOURCE_EXHAUSTED shape from the quota and bare from the injector.
    ctx.stack.sheets.set_limits(reads_per_minute=1, writes_per_minute=1, window_seconds=1.5)
    seed = injector_seed(error_rate=0.20, want=("error",), window=(0, 2))
    ctx.stack.sheets.set_faults(error_rate=0.20, error_statuses=[429], seed=seed)
    ctx.notes["sheet_requests_before"] = ctx.stack.sheets.stats()["total"]


def _sheets_hit(found: Injected, ctx: Ctx) -> int:
    return found["sheets.errors"]


def _sf_limit(ctx: Ctx) -> None:
    # The org's daily allocation with one request left.
    ctx.stack.salesforce.set_limits(daily_limit=5000, used=4999)


def _sf_limit_hit(found: Injected, ctx: Ctx) -> int:
    return int(ctx.stack.salesforce.stats()["api_usage"] >= 5000)


def _sf_expiry(ctx: Ctx) -> None:
    # Sessions expire 0.4 s after login and every call is 150 ms slower, so calls keep
    # meeting 401 INVALID_SESSION_ID mid-run.
    ctx.stack.salesforce.set_limits(token_ttl_seconds=0.4)
    ctx.stack.salesforce.set_faults(latency_ms=150)
    ctx.stack.salesforce.expire_tokens()


def _sf_expiry_hit(found: Injected, ctx: Ctx) -> int:
    # Sessions issued since arming (the emulator keeps expired ones): more than the first login.
    ctx.notes["sessions"] = len(ctx.sf_app.state.tokens)
    return ctx.notes["sessions"] - 1


def _count(*keys: str) -> Callable[[Injected, Ctx], int]:
    return lambda found, ctx: sum(found[k] for k in keys)


def _latency_hit(found: Injected, ctx: Ctx) -> int:
    return ctx.stack.coldsend.stats()["total"] - ctx.notes["t0"]


_5XX = _count("coldsend.errors", "salesforce.errors", "sheets.errors")
_DROPS = _count(
    "coldsend.drops_before",
    "coldsend.drops_after",
    "salesforce.drops_before",
    "salesforce.drops_after",
)
_ANY = r"\S"


def _cells() -> list[Cell]:
    cells: list[Cell] = []
    for flow in ("sync", "write-back"):
        cells += [
            Cell(
                f"{flow}-coldsend-100-per-minute",
                flow,
                "salesforce",
                _minute_limit(leave=3 if flow == "sync" else 0),
                _minute_hit,
                r"RateLimit|[Rr]ate limit",
            ),
            Cell(
                f"{flow}-coldsend-1000-per-hour-spent",
                flow,
                "salesforce",
                _hour_limit,
                _hour_hit,
                r"[Rr]ate limit",
            ),
            Cell(
                f"{flow}-5xx-10pct", flow, "salesforce", _errors(flow), _5XX, r"50[023]|[Ss]erver"
            ),
            Cell(
                f"{flow}-drops-5pct",
                flow,
                "salesforce",
                _drops(flow),
                _DROPS,
                r"[Cc]onnection|Read|Protocol|closed|failed",
            ),
            Cell(f"{flow}-latency-200ms", flow, "salesforce", _latency, _latency_hit, _ANY),
            Cell(
                f"{flow}-sheets-429",
                flow,
                "sheet",
                _sheets_429,
                _sheets_hit,
                r"429|[Qq]uota|RESOURCE_EXHAUSTED",
            ),
            Cell(
                f"{flow}-salesforce-request-limit",
                flow,
                "salesforce",
                _sf_limit,
                _sf_limit_hit,
                r"RequestLimitExceeded|REQUEST_LIMIT_EXCEEDED|request limit|[Bb]udget",
            ),
            Cell(
                f"{flow}-salesforce-session-expiry",
                flow,
                "salesforce",
                _sf_expiry,
                _sf_expiry_hit,
                r"INVALID_SESSION_ID|session",
            ),
        ]
    cells.append(
        Cell(
            "sync-upload-jobs-fail-10pct-stall-10pct",
            "sync",
            "salesforce",
            _jobs,
            _jobs_hit,
            r"not accounted for.*(FAILED|failed|deadline|timed out)",
        )
    )
    return cells


CELLS = _cells()


def _disarm(stack: Stack) -> None:
    clear_all_faults(stack)
    stack.coldsend.set_limits(per_minute=GENEROUS_PER_MINUTE, per_hour=GENEROUS_PER_HOUR)
    stack.coldsend.set_jobs(fail_rate=0.0, stall_rate=0.0)
    stack.sheets.set_limits(reads_per_minute=None, writes_per_minute=None)
    stack.salesforce.set_limits(daily_limit=10_000_000, used=0, token_ttl_seconds=3600)


def _run(ctx: Ctx, flow: str) -> State[Any]:
    world = ctx.world
    common = {
        "campaign_id": world.campaign_id,
        "lead_store": world.store,
        "coldsend": ctx.stack.coldsend_block,
    }
    if flow == "sync":
        state = sync_leads_to_campaign(
            **common, rows_per_upload=ROWS_PER_UPLOAD, **ctx.flow_params, return_state=True
        )
    else:
        state = write_back_statuses(**common, return_state=True)
    return state


def _prepare_write_back(ctx: Ctx) -> None:
    """Fill the campaign with a clean sync, write statuses back once, then move them on.

    The second set of campaign statuses includes some that are *behind* what the CRM now holds
    (a late SENT after a REPLIED), so the faulted run must also keep those from going backwards.
    """
    state = _run(ctx, "sync")
    assert state.is_completed(), state.message
    world = ctx.world
    world.set_campaign_statuses(world.random_statuses(0.9))
    assert _run(ctx, "write-back").is_completed()
    world.set_campaign_statuses(world.random_statuses(0.5))


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
def test_fault_cell(
    stack: Stack,
    salesforce_sandbox_server: tuple[RunningServer, SalesforceSandboxApp],
    cell: Cell,
) -> None:
    world = make_world(stack, cell.crm, LEADS, seed=zlib.crc32(cell.name.encode()) % 1000)
    ctx = Ctx(stack, world, salesforce_sandbox_server[1])
    expected_emails = world.source_emails()
    if cell.flow == "write-back":
        _prepare_write_back(ctx)
    sync_before = SyncSnapshot.take(world)
    crm_before = world.crm_statuses()
    want = expected_statuses(world, crm_before) if cell.flow == "write-back" else {}

    cell.arm(ctx)
    before = injected(stack)
    started = time.monotonic()
    state = _run(ctx, cell.flow)
    ctx.notes["elapsed_s"] = round(time.monotonic() - started, 1)
    hits = cell.hit(injected(stack) - before, ctx)
    _disarm(stack)
    assert hits > 0, f"the fault never hit the run: {ctx.notes}"

    outcome = "completed"
    message = ""
    if not state.is_completed():
        assert state.is_failed(), f"run ended {state.type}: {state.message}"
        message = state.message or ""
        assert re.search(cell.failure, message, re.S), f"unclear failure message: {message!r}"
        # Nothing wrong left behind by the failed run, then the next run completes it.
        if cell.flow == "sync":
            check_sync_safe(world, sync_before, expected_emails)
        else:
            check_never_backwards(crm_before, world.crm_statuses())
        again = _run(ctx, cell.flow)
        assert again.is_completed(), f"the run after the faults failed too: {again.message}"
        outcome = "failed loudly, next run completed"

    if cell.flow == "sync":
        count = check_sync_exact(world, sync_before, expected_emails)
        ctx.notes["leads_in_campaign"] = count
    else:
        ctx.notes["records_changed"] = check_write_back_exact(world, crm_before, want)
    FIGURES.append(
        {
            "suite": "fault-matrix",
            "cell": cell.name,
            "outcome": outcome,
            "hits": hits,
            "message": message[:160],
            **ctx.notes,
        }
    )
