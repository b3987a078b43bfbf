"""The README's main command, `prefect-coldsend demo`, run twice as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())"]


def run_demo(state_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COLDSEND_"))}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # The embedded server gets 20 s to start by default; a busy 2-core machine needs more.
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    done = subprocess.run(
        [*CLI, "demo", "--state-dir", str(state_dir), "--leads", "120", "--sheet-rows", "40"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    return done.stdout


def sync_row(output: str, store: str) -> list[int]:
    match = re.search(
        rf"^{re.escape(store)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", output, re.M
    )
    assert match, output
    return [int(g) for g in match.groups()]


@pytest.mark.timeout(600)
def test_demo_runs_twice_and_the_second_sync_uploads_nothing(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    read, uploaded, in_campaign, repeats, rejected, suppressed = sync_row(
        first, "salesforce-leads/demo"
    )
    assert read == 120 and uploaded > 100 and rejected + repeats > 0
    assert read == uploaded + in_campaign + repeats + rejected + suppressed
    sheet = sync_row(first, "google-sheet-leads/demo")
    assert sheet[1] > 0 and sheet[2] > 0 and sheet[4] > 0  # uploads, shared leads, bad rows
    # HubSpot: 40 contacts (a third of the leads); the 25th has no email.
    hub = sync_row(first, "hubspot-contacts/demo")
    assert hub[0] == 40 and hub[1] > 0 and hub[4] == 1
    assert sum(hub[1:]) == hub[0]
    written = re.search(r"^hubspot-contacts/demo\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", first, re.M)
    assert written and int(written.group(1)) > 0, first
    assert "Campaign status after launch: ACTIVE" in first
    assert (tmp_path / "prefect").is_dir()  # the demo keeps its Prefect data beside its state

    second = run_demo(tmp_path)
    for store in ("salesforce-leads/demo", "hubspot-contacts/demo", "google-sheet-leads/demo"):
        read, uploaded, in_campaign, repeats, rejected, suppressed = sync_row(second, store)
        assert uploaded == 0, second
        assert read == uploaded + in_campaign + repeats + rejected + suppressed


def test_demo_people_have_company_style_ascii_addresses_and_only_the_planted_rows_are_bad() -> None:
    from app.demo import _sheet_rows
    from connectors.leads import normalize_email
    from flows.naming import ascii_fold

    rows = _sheet_rows(300, ["known@salesforce-lead.example"])[1:]
    bad = [row for row in rows if normalize_email(row[0])[0] is None]
    # The planted ones: not an email, blank, half an address, an empty row, accented letters.
    assert [row[0] for row in bad] == [
        "not-an-email",
        "",
        "someone@",
        "",
        "renée.lefèvre@atelier-lefevre.example",
    ]
    people = rows[:300]
    assert len({row[0] for row in people}) == 300
    accented = [row for row in people if not (row[1] + row[2]).isascii()]
    assert accented, "the demo's people include names with accents"
    for email, first, last, company, _ in people:
        # As a company assigns them: chloe.muller@... for Chloé Müller, numbered when taken.
        name = ".".join(
            "".join(c for c in ascii_fold(part).lower() if c.isalnum()) for part in (first, last)
        )
        assert email.isascii() and email.split("@")[0].rstrip("0123456789") == name
        assert email.endswith(".example") and company


def test_the_closing_hint_names_the_server_the_demo_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.demo import where_to_look

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4321/api")
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    text = "\n".join(where_to_look("/home/x/.prefect"))
    assert "http://127.0.0.1:4321/runs" in text and "4200" not in text
    assert "PREFECT_HOME" not in text
    monkeypatch.delenv("PREFECT_API_URL")
    text = "\n".join(where_to_look("/home/x/.prefect"))
    assert "PREFECT_HOME=/home/x/.prefect" in text and "http://127.0.0.1:4200" in text
