"""Runs one flow in a child process for the crash loop: import, say READY, wait for GO, run.

Usage: ``python -m tests.reliability._runner '<json spec>'`` with ``{"flow": "sync" |
"write-back", "parameters": {...}}``. The heavy imports happen before READY so the parent can
start the next child while the current one runs and time its kill from GO, inside the run.
The child talks to the parent's Prefect server (PREFECT_API_URL in its environment) and
sandboxes. It prints ``RESULT <state type> <message>`` and exits 0 when the run completed.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    from flows.sync import sync_leads_to_campaign
    from flows.write_back import write_back_statuses

    flows = {"sync": sync_leads_to_campaign, "write-back": write_back_statuses}
    flow = flows[spec["flow"]]
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return 3
    started = time.monotonic()
    state = flow(**spec["parameters"], return_state=True)
    elapsed = time.monotonic() - started
    message = (state.message or "").replace("\n", " ")
    print(f"RESULT {state.type.value} {elapsed:.3f} {message}", flush=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
