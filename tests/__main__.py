"""The test command (`make pytest`): the end-to-end suites run beside the rest of the suite.

The e2e suites (tests/e2e: a Prefect server and workers, PostgreSQL at scale) spend most of
their time waiting on real Prefect windows: a worker's poll, a flow-run process starting,
the 90 s after a killed worker's last heartbeat before the automation marks its runs Crashed.
Run one after the other, the suite takes over half an hour on 2 cores; run beside the rest,
those waits overlap with work. Both halves are ordinary pytest runs in their own processes
(own sandboxes, own Prefect servers, own ports); the e2e half's output is printed when it
ends, and the command fails if either half fails.

    python -m tests [PYTEST OPTIONS]       # both halves at once
    COLDSEND_TESTS_SERIAL=1 python -m tests  # one pytest run, as before

Test paths, -m or -k in the options mean a chosen subset: that runs as one plain pytest run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

E2E = "e2e"


def _selects_tests(args: Sequence[str]) -> bool:
    """Whether the options already choose tests (paths, markers, keywords, node ids)."""
    return any(a in ("-m", "-k") or a.startswith(("-m=", "-k=")) or a[:1] != "-" for a in args)


def main(argv: Sequence[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if os.environ.get("COLDSEND_TESTS_SERIAL") or _selects_tests(argv):
        return subprocess.call([*pytest, *argv])
    log = Path(tempfile.mkdtemp(prefix="coldsend-e2e-")) / "pytest.log"
    started = time.monotonic()
    with log.open("w") as out:
        e2e = subprocess.Popen(
            [*pytest, "-m", E2E, "-p", "no:cacheprovider", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        print(f"end-to-end suites (-m {E2E}) running beside this run; their log: {log}", flush=True)
        try:
            rest = subprocess.call([*pytest, "-m", f"not {E2E}", *argv])
            print(f"\nwaiting for the end-to-end suites (-m {E2E}) ...", flush=True)
            e2e_status = e2e.wait()
        except BaseException:
            e2e.terminate()
            e2e.wait()
            raise
    print(f"\n===== end-to-end suites (-m {E2E}), run beside the rest =====", flush=True)
    sys.stdout.write(log.read_text(errors="replace"))
    print(
        f"\nnot {E2E}: exit {rest}; {E2E}: exit {e2e_status}; "
        f"both in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return rest or e2e_status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
