"""`prefect-coldsend sync` on bad input, as a subprocess: one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from tests._stack import Stack

from .test_csv_corpus import CSV_CASES, _write
from .test_flow_bad_input import MIXED_CSV, MIXED_REJECTED_ROWS, MIXED_VALID

CLI = [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())"]


def _run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [*CLI, *args, "--coldsend", stack.coldsend_block],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=Path(__file__).parents[2],
    )


# Each run is a fresh interpreter importing Prefect (~10 s here): one case by default, the
# rest with COLDSEND_CLI_CASES=all.
CLI_CASES = ["unclosed-quote"] + (
    ["xlsx-renamed-to-csv", "no-email-column", "huge-field"]
    if os.environ.get("COLDSEND_CLI_CASES") == "all"
    else []
)


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_sync_of_an_unreadable_file_prints_one_error_line(
    case_id: str, stack: Stack, tmp_path: Path
) -> None:
    case = next(c for c in CSV_CASES if c.id == case_id)
    assert case.error is not None
    store = stack.csv_store(_write(tmp_path, case), case.mapping)
    campaign_id = stack.new_campaign()

    done = _run(stack, "sync", "--campaign-id", campaign_id, "--lead-store", store)

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert case.error[1] in errors[0]
    assert stack.campaign_emails(campaign_id) == []


def test_cli_sync_of_a_file_with_bad_rows_succeeds_and_counts_them(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED_CSV.encode())
    campaign_id = stack.new_campaign()

    done = _run(stack, "sync", "--campaign-id", campaign_id, "--lead-store", stack.csv_store(path))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    # Row 6 repeats row 1: counted as a duplicate in the source (issue 10's vocabulary).
    assert report["rejected"] == len(MIXED_REJECTED_ROWS) - 1
    assert report["duplicate_in_source"] == 1
    # Row 9 of the file is a valid email the other test adds to its campaign first; here it is new.
    assert set(stack.campaign_emails(campaign_id)) == MIXED_VALID | {"existing@x.com"}
