"""The `prefect-coldsend` CLI as a user runs it: subprocesses against the sandboxes.

Every run talks to the session's Prefect test server (PREFECT_API_URL), so no run spends
time starting a temporary server; each still pays a few seconds importing Prefect, so the
checks are batched into few runs.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from tests._stack import Stack

CLI = [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())"]
ROOT = Path(__file__).resolve().parents[2]

EXPORT = [
    ["Record ID", "First Name", "Surname", "E-mail address", "Company Name", "Phone"],
    ["1", "Ann", "Lee", "ann@example.com", "Acme", "555"],
    ["2", "Bob", "Ray", "not-an-email", "Beta", "556"],
    ["3", "Cy", "Fox", "cy@example.com", "Gamma", "557"],
]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), **(env or {})}
    full.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full, timeout=300, cwd=cwd, check=False
    )


def write_export(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(EXPORT)
    return path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exactly one line on stderr naming the error, and no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    # The failure is not echoed by Prefect's console logging as well.
    key = errors[0].removeprefix("error: ")[:40]
    assert sum(key in line for line in output.splitlines()) == 1, output
    return errors[0]


def test_version_and_global_options_anywhere() -> None:
    first = cli("--version")
    second = cli("scopes", "-V")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.startswith("prefect-coldsend 0.1.0")
    assert second.stdout == first.stdout


def test_sync_and_write_back_a_csv_with_no_saved_block(stack: Stack, tmp_path: Path) -> None:
    path = write_export(tmp_path / "hubspot-export.csv")
    campaign_id = stack.new_campaign()

    done = cli(
        "sync",
        "--csv",
        str(path),
        "--campaign-id",
        campaign_id,
        "--map",
        "last_name=Surname",
        "--coldsend",
        stack.coldsend_block,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["read"], report["uploaded"], report["rejected"]) == (3, 2, 1)
    assert report["columns"] == {
        "email": "E-mail address",
        "first_name": "First Name",
        "last_name": "Surname",
        "company": "Company Name",
    }
    assert report["unused_columns"] == ["Record ID", "Phone"]
    with stack.client() as client, client.export_leads(campaign_id) as rows:
        assert {(r.email, r.last_name, r.company) for r in rows} == {
            ("ann@example.com", "Lee", "Acme"),
            ("cy@example.com", "Fox", "Gamma"),
        }

    # --debug after the command; the write-back matches on the column the sync read.
    back = cli(
        "write-back",
        "--csv",
        str(path),
        "--campaign-id",
        campaign_id,
        "--map",
        "last_name=Surname",
        "--coldsend",
        stack.coldsend_block,
        "--debug",
    )

    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["written"] == 2
    with path.open(newline="", encoding="utf-8") as handle:
        statuses = {r["E-mail address"]: r["ColdSend Status"] or "" for r in csv.DictReader(handle)}
    assert statuses == {
        "ann@example.com": "PENDING",
        "not-an-email": "",
        "cy@example.com": "PENDING",
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_wrong_coldsend_urls_fail_in_one_line_with_the_fix(stack: Stack, tmp_path: Path) -> None:
    path = write_export(tmp_path / "leads.csv")
    closed = f"http://127.0.0.1:{_closed_port()}/api/public/v1"
    started = time.monotonic()
    refused = cli(
        "sync",
        "--campaign-id",
        "c1",
        "--csv",
        str(path),
        env={"COLDSEND_API_KEY": stack.api_key, "COLDSEND_BASE_URL": closed},
    )
    elapsed = time.monotonic() - started
    line = one_error_line(refused)
    assert "Nothing answers at http://127.0.0.1:" in line and "COLDSEND_BASE_URL" in line
    print(f"closed port: failed after {elapsed:.1f} s (Prefect import included)")

    root = stack.coldsend.base_url.removesuffix("/api/public/v1")
    no_prefix = cli(
        "sync",
        "--campaign-id",
        "c1",
        "--csv",
        str(path),
        env={"COLDSEND_API_KEY": stack.api_key, "COLDSEND_BASE_URL": root},
    )
    assert f"use {root}/api/public/v1" in one_error_line(no_prefix)

    bad_map = cli("sync", "--campaign-id", "c1", "--csv", str(path), "--map", "email")
    assert "FIELD=COLUMN" in one_error_line(bad_map)

    # The first stumble: a file given where a saved block is expected.
    as_block = cli(
        "sync",
        "--campaign-id",
        "c1",
        "--lead-store",
        "data/hubspot.csv",
        env={"COLDSEND_API_KEY": stack.api_key, "COLDSEND_BASE_URL": stack.coldsend.base_url},
    )
    assert "use `prefect-coldsend sync --csv data/hubspot.csv`" in one_error_line(as_block)


def _definitions(tmp_path: Path, stack: Stack, campaign_id: str) -> Path:
    write_export(tmp_path / "leads.csv")
    (tmp_path / "campaign.yaml").write_text(
        yaml.safe_dump(
            {
                "name": f"Definitions test {stack.tag}",
                "variants": [
                    {
                        "subject_template": "Hi {{first_name}}",
                        "email_content": "Hello {{first_name}}, a short note.",
                    }
                ],
            }
        )
    )
    path = tmp_path / "coldsend.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "coldsend": stack.coldsend_block,
                "syncs": [
                    {
                        "name": "by-id",
                        "source": {"csv": "leads.csv"},
                        "mapping": {"last_name": "Surname"},
                        "campaign": {"id": campaign_id},
                    },
                    {
                        "name": "by-spec",
                        "source": {"csv": {"path": "leads.csv"}},
                        "campaign": {"spec_file": "campaign.yaml"},
                        "schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"},
                        "write_back": {"enabled": False},
                    },
                ],
            }
        )
    )
    return path


def test_plan_changes_nothing_then_run_syncs_each_definition(stack: Stack, tmp_path: Path) -> None:
    campaign_id = stack.new_campaign()
    path = _definitions(tmp_path, stack, campaign_id)
    before = {c.name for c in _campaigns(stack)}

    plan = cli("plan", str(path))

    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert "sync by-id" in out and "new: 2" in out and "rejected: 1" in out
    assert "rejected row 2: invalid email 'not-an-email'" in out
    assert f"campaign 'Definitions test {stack.tag}' does not exist yet: would be created" in out
    assert "plan: nothing was changed" in out
    assert stack.campaign_emails(campaign_id) == []
    assert {c.name for c in _campaigns(stack)} == before

    run = cli("run", str(path), "--sync", "by-id")
    again = cli("run", "--sync", "by-id", "--sync", "by-spec", "--write-back", cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert "sync by-id" in run.stdout and "uploaded 2" in run.stdout
    assert "by-spec" not in run.stdout
    assert again.returncode == 0, again.stderr
    assert "sync by-id" in again.stdout and "uploaded 0" in again.stdout
    assert "sync by-spec" in again.stdout and "uploaded 2" in again.stdout
    assert "write-back: 2 written" in again.stdout  # by-id only: by-spec has none
    assert again.stdout.count("write-back:") == 1
    assert sorted(stack.campaign_emails(campaign_id)) == ["ann@example.com", "cy@example.com"]
    assert f"Definitions test {stack.tag}" in {c.name for c in _campaigns(stack)}

    # Planned again: the spec's campaign is now found by name and everything is in it.
    replan = cli("plan", str(path), "--sync", "by-spec")
    assert replan.returncode == 0, replan.stderr
    assert "sync by-spec" in replan.stdout and "by-id" not in replan.stdout
    assert "new: 0  already in campaign: 2  duplicate in source: 0  rejected: 1" in replan.stdout


def _campaigns(stack: Stack) -> list[object]:
    with stack.client() as client:
        return list(client.iter_campaigns())


def test_validate_names_the_sync_the_field_and_the_fix(tmp_path: Path) -> None:
    write_export(tmp_path / "leads.csv")
    path = tmp_path / "coldsend.yaml"
    path.write_text(
        "syncs:\n"
        "  - name: web\n"
        "    source: {csv: leads.csv}\n"
        "    mapping: {email: Work Email}\n"
        "    campaign: {id: abc}\n"
        "  - name: Sheet Sync\n"
        "    source: {csv: leads.csv, block: csv-file-leads/x}\n"
        "    campaign: {id: abc}\n"
        "    schedle: {interval: 60}\n"
    )

    done = cli("validate", str(path))

    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), done.stderr
    text = "\n".join(lines)
    assert "sync 'Sheet Sync', field name:" in text and "lower-case letters" in text
    assert "sync 'Sheet Sync', field source: give exactly one of block, csv" in text
    assert (
        "sync 'Sheet Sync', field schedle: Extra inputs are not permitted; fix: remove it" in text
    )
    path.write_text(path.read_text().split("  - name: Sheet Sync")[0])
    done = cli("validate", str(path))
    assert done.returncode == 1
    assert (
        "sync 'web', field mapping: CSV file leads.csv has no column or field 'Work Email'"
        in done.stderr
    )
    path.write_text(path.read_text().replace("Work Email", "E-mail address"))
    done = cli("validate", str(path))
    assert done.returncode == 0, done.stderr
    assert "ok  web: CSV leads.csv -> campaign abc" in done.stdout


@pytest.mark.parametrize(
    ("command", "api_url", "heartbeats"),
    [
        ("sync", None, False),  # the embedded server ends with the process: nothing watches
        ("demo", None, False),
        ("sync", "http://127.0.0.1:4200/api", True),  # a real server's automations do
        ("deploy", None, True),  # not a run: Prefect's setting stands
    ],
)
def test_runs_on_the_embedded_server_go_without_heartbeats(
    command: str, api_url: str | None, heartbeats: bool
) -> None:
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    from app.cli import _heartbeats_only_where_watched

    with (
        temporary_settings(
            updates={PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}
        ),
        _heartbeats_only_where_watched(command),
    ):
        assert get_current_settings().flows.heartbeat_frequency == (30 if heartbeats else None)
