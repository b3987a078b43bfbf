"""Arming the sandboxes' faults for one matrix cell, and reading back what was injected.

Rates are the ones the issue names. With a few dozen requests per run, whether a 5% rate
produces any fault at all is luck; so each cell picks a seed for which the injector's own draws
(`sandbox._faults.FaultInjector`, four per request) put the named fault among the requests
the run makes, and the cell then asserts the fault was really injected. If the injector's
drawing ever changes, that assertion fails instead of the cell passing without faults.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx

from tests._stack import Stack

Injected = Counter[str]


def injector_seed(
    *,
    error_rate: float = 0.0,
    drop_rate: float = 0.0,
    after_share: float = 0.5,
    want: tuple[str, ...],
    window: tuple[int, int],
    start: int = 0,
) -> int:
    """The first seed from `start` whose draws inject each of `want` within requests `window`.

    `want` holds "error", "drop_before" and "drop_after"; the window is 0-based request numbers.
    """
    lo, hi = window
    for seed in range(start, start + 100_000):
        rng = random.Random(seed)
        seen: set[str] = set()
        for number in range(hi):
            err, drop, when = rng.random(), rng.random(), rng.random()
            rng.randrange(1 << 30)
            kind = (
                ("drop_before" if when >= after_share else "drop_after")
                if drop < drop_rate
                else "error"
                if err < error_rate
                else ""
            )
            if kind and number >= lo:
                seen.add(kind)
        if seen >= set(want):
            return seed
    raise AssertionError(f"no seed injects {want} in requests {window}")


def job_seed(*, fail_rate: float, stall_rate: float, jobs: int, start: int = 0) -> int:
    """The first seed for which the first `jobs` upload jobs include a failure and a stall.

    Mirrors `sandbox.coldsend.jobs.JobRunner.submit`: job n's fate is drawn from
    ``random.Random(f"{seed}:{n}")``.
    """
    for seed in range(start, start + 100_000):
        fates = set()
        for number in range(jobs):
            draw = random.Random(f"{seed}:{number}").random()
            if draw < fail_rate:
                fates.add("fail")
            elif draw < fail_rate + stall_rate:
                fates.add("stall")
        if fates == {"fail", "stall"}:
            return seed
    raise AssertionError("no job seed found")


def injected(stack: Stack) -> Injected:
    """Faults injected so far by every sandbox, keyed ``<service>.<kind>``."""
    out: Injected = Counter()
    for kind, n in stack.coldsend.server.app.injected.items():
        out[f"coldsend.{kind}"] += n
    sf = httpx.get(f"{stack.salesforce.url}/_sandbox/faults", timeout=30).json()
    for kind, n in sf["injected"].items():
        out[f"salesforce.{kind}"] += n
    sh = httpx.get(f"{stack.sheets.url}/_sandbox/faults", timeout=30).json()
    for kind, n in sh["injected"].items():
        out[f"sheets.{kind}"] += n
    return out


def set_all_faults(stack: Stack, **config: Any) -> None:
    """The same fault config on every sandbox (each keeps its own seeded draws)."""
    stack.coldsend.set_faults(**config)
    stack.salesforce.set_faults(**config)
    stack.sheets.set_faults(**config)


def clear_all_faults(stack: Stack) -> None:
    stack.coldsend.set_faults()
    stack.salesforce.set_faults()
    stack.sheets.set_faults()


def spend_coldsend_budget(stack: Stack, api_key: str, *, leave: int) -> int:
    """Use up the key's current minute window until `leave` requests remain; returns the reset.

    Real requests (GET /campaigns) with the flow's own key, so the flow then meets the limit.
    """
    with httpx.Client(
        base_url=stack.coldsend.base_url, headers={"X-API-Key": api_key}, timeout=30
    ) as http:
        while True:
            response = http.get("/campaigns", params={"limit": 1})
            remaining = int(response.headers["x-ratelimit-remaining"])
            if remaining <= leave:
                return int(response.headers["x-ratelimit-reset"])


def spend_coldsend_hour(stack: Stack, api_key: str, *, per_hour: int) -> int:
    """Send `per_hour` requests with the key: every one counts, so the hour budget is gone."""
    with httpx.Client(
        base_url=stack.coldsend.base_url, headers={"X-API-Key": api_key}, timeout=30
    ) as http:
        reset = 0
        for _ in range(per_hour):
            response = http.get("/campaigns", params={"limit": 1})
            reset = int(response.headers["x-ratelimit-reset"])
        return reset
