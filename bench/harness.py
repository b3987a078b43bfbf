"""Measuring one side of the benchmark in a fresh worker process: phases, CPU, RSS, requests.

A worker (``python -m bench --worker PLAN.json``) runs one side (ours, the naive baseline or the
parallel-upload demo) at one size and writes its figures to ``plan["out"]``. Being a fresh
process, its peak RSS is its own, and its CPU (``time.process_time``: every thread of this
process) is the client's alone, because the sandboxes and the Prefect server run elsewhere.
"""

from __future__ import annotations

import cProfile
import gc
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.sandboxes import Sandboxes, SandboxInfo

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Recorder:
    """Runs named phases, each measured for wall time, process CPU and requests per service.

    Request counts come from the sandboxes' own ``/_sandbox/stats`` (reset before each phase,
    read after it), so they count what reached each service, retries included. The control
    calls happen outside the measured window.
    """

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.info = SandboxInfo.from_json(json.dumps(plan["sandboxes"]))
        self.sandboxes = Sandboxes(self.info)
        self.phases: list[dict[str, Any]] = []
        self.checks: list[str] = []
        self.extra: dict[str, Any] = {}
        # [seconds spent in collections, collections] since the recorder started.
        self._gc_seconds = [0.0, 0.0]
        started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.process_time()
            else:
                self._gc_seconds[0] += time.process_time() - started[0]
                self._gc_seconds[1] += 1

        gc.callbacks.append(on_gc)

    def phase(self, name: str, leads: int, fn: Callable[[], T], *, group: str) -> T:
        """Run `fn` as phase `name` (`group` is sync, write-back, rerun-sync, ...)."""
        self.sandboxes.reset_stats()
        gc_seconds = self._gc_seconds
        gc_before, gc_runs_before = gc_seconds[0], gc_seconds[1]
        # CPU time (this thread), not wall time: waiting on the network is not a hot spot.
        profiler = cProfile.Profile(time.process_time) if self.plan.get("profile") else None
        wall, cpu = time.perf_counter(), time.process_time()
        result = profiler.runcall(fn) if profiler is not None else fn()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None:
            # Profiled figures are inflated; the profile is for finding hot spots only.
            path = Path(self.plan["profile"]) / f"{self.plan['run_tag']}-{name}.prof"
            profiler.dump_stats(path)
        stats = self.sandboxes.stats()
        self.phases.append(
            {
                "name": name,
                "group": group,
                "leads": leads,
                "wall_s": wall,
                "cpu_s": cpu,
                "requests": {service: s["total"] for service, s in stats.items()},
                "routes": {
                    service: {k: v for k, v in s.items() if k != "total"}
                    for service, s in stats.items()
                },
                "peak_rss_mb_after": peak_rss_mb(),
                # Python's cyclic garbage collector, part of the CPU above (all generations).
                "gc_s": gc_seconds[0] - gc_before,
                "gc_collections": int(gc_seconds[1] - gc_runs_before),
            }
        )
        return result

    def check(self, ok: bool, what: str) -> None:
        """Record a correctness check; a failed one fails the benchmark run."""
        if not ok:
            raise AssertionError(f"benchmark check failed: {what}")
        self.checks.append(what)

    def finish(self) -> None:
        result = {
            "side": self.plan["side"],
            "size": self.plan["size"],
            "phases": self.phases,
            "checks": self.checks,
            "peak_rss_mb": peak_rss_mb(),
            **self.extra,
        }
        Path(self.plan["out"]).write_text(json.dumps(result, indent=1))
        self.sandboxes.close()
