"""Deployments: `prefect deploy` refusing empty values, `prefect-coldsend deploy` per sync, serve."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from app.serve import PREFECT_YAML, deployments_from_prefect_yaml
from app.steps import require_values
from blocks.budgets import coldsend_budgets
from tests._stack import Stack

from .test_cli import ROOT, cli, write_export


def test_prefect_deploy_with_the_variables_unset_fails_and_deploys_nothing(
    prefect_server: None,
) -> None:
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name="coldsend-process", type="process"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDSEND_")}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env.pop("PYTEST_CURRENT_TEST", None)
    prefect = Path(sys.executable).with_name("prefect")
    done = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "COLDSEND_CAMPAIGN_ID, COLDSEND_LEAD_STORE are empty" in output
    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    assert "sync-every-15-minutes" not in names


def test_require_values_names_each_empty_one() -> None:
    assert require_values(A="x") == {"A": "x"}
    with pytest.raises(ValueError, match=r"B is empty: set B=\.\.\."):
        require_values(A="x", B=" ")


def test_serve_reads_prefect_yaml_instead_of_a_mirror() -> None:
    source = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    built = deployments_from_prefect_yaml(
        {
            "COLDSEND_CAMPAIGN_ID": "c-1",
            "COLDSEND_LEAD_STORE": "csv-file-leads/x",
            "COLDSEND_BLOCK": "",
        }
    )
    assert [d.name for d in built] == [d["name"] for d in source]
    by_name = {d.name: d for d in built}
    sync = by_name["sync-every-15-minutes"]
    assert sync.parameters == {
        "campaign_id": "c-1",
        "lead_store": "csv-file-leads/x",
        "coldsend": "",
    }
    assert [s.schedule.interval.total_seconds() for s in sync.schedules] == [900]  # type: ignore[union-attr]
    assert sync.concurrency_limit == 1
    launch = by_name["launch-on-sync"]
    assert launch.triggers and "coldsend.leads.synced" in launch.triggers[0].expect
    with pytest.raises(ValueError, match="COLDSEND_LEAD_STORE is not set"):
        deployments_from_prefect_yaml({"COLDSEND_CAMPAIGN_ID": "c-1", "COLDSEND_BLOCK": ""})


@pytest.mark.usefixtures("limits_and_automations_made_here_removed")
def test_deploy_makes_a_deployment_set_per_sync_and_refuses_an_invalid_file(
    stack: Stack, tmp_path: Path
) -> None:
    pool = f"pool-{stack.tag}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    write_export(tmp_path / "leads.csv")
    campaign_id = stack.new_campaign()
    name = f"web-{stack.tag}"
    path = tmp_path / "coldsend.yaml"
    definitions = {
        "coldsend": stack.coldsend_block,
        "work_pool": {"name": pool},
        "syncs": [
            {
                "name": name,
                "source": {"csv": "leads.csv"},
                "campaign": {"id": campaign_id},
                "launch": True,
                "on_removed": "delete_pending",
                "max_updates_per_run": 50,
                "schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"},
                "write_back": {"schedule": {"interval": 7200}},
            },
            {
                "name": f"bad-{stack.tag}",
                "source": {"csv": "missing.csv"},
                "campaign": {"id": campaign_id},
            },
        ],
    }
    path.write_text(yaml.safe_dump(definitions))

    refused = cli("deploy", str(path))

    assert refused.returncode == 1 and "missing.csv" in refused.stderr
    assert _deployments(stack) == {}

    definitions["syncs"] = definitions["syncs"][:1]  # type: ignore[index]
    path.write_text(yaml.safe_dump(definitions))
    done = cli("deploy", str(path))

    assert done.returncode == 0, done.stderr
    # The key's shared API budget exists before any run of these deployments starts.
    assert "shared API budget: coldsend-key-" in done.stdout
    with get_client(sync_client=True) as client:
        for budget in coldsend_budgets(stack.api_key):
            limit = client.read_global_concurrency_limit_by_name(budget.name)
            assert limit.limit == budget.limit_slots
    # ... and so do the automations that crash the runs of a dead worker: three heartbeat
    # intervals of Prefect's default 180 s, as this shell sets no heartbeat frequency.
    assert "crash detection: prefect-coldsend: crash zombie flow runs" in done.stdout
    assert _crash_windows() == {"zombie": 540.0, "never started": 600.0}
    found = _deployments(stack)
    assert set(found) == {
        f"sync-leads-to-campaign/{name}",
        f"write-back-campaign-statuses/{name}",
        f"launch-campaign-when-ready/{name}",
    }
    sync = found[f"sync-leads-to-campaign/{name}"]
    assert sync.work_pool_name == pool
    assert sync.parameters["lead_store"] == f"csv-file-leads/{name}"
    assert sync.parameters["campaign_id"] == campaign_id
    assert (sync.parameters["on_removed"], sync.parameters["max_updates_per_run"]) == (
        "delete_pending",
        50,
    )
    (schedule,) = sync.schedules
    assert schedule.schedule.cron == "0 9 * * 1-5"  # type: ignore[union-attr]
    assert schedule.schedule.timezone == "Europe/Paris"  # type: ignore[union-attr]
    back = found[f"write-back-campaign-statuses/{name}"]
    assert back.schedules[0].schedule.interval.total_seconds() == 7200  # type: ignore[union-attr]
    launch = found[f"launch-campaign-when-ready/{name}"]
    assert launch.parameters["campaign_id"] == campaign_id
    # Deploying again updates the same deployments and automations (workers beating every 30 s).
    again = cli("deploy", str(path), "--heartbeat-seconds", "30")
    assert again.returncode == 0, again.stderr
    assert set(_deployments(stack)) == set(found)
    assert _crash_windows() == {"zombie": 90.0, "never started": 600.0}
    # A heartbeat Prefect would refuse is named with the option to fix.
    wrong = cli("deploy", str(path), "--heartbeat-seconds", "5")
    assert wrong.returncode == 1
    assert "--heartbeat-seconds: heartbeat_seconds must be at least 30" in wrong.stderr


def _crash_windows() -> dict[str, float]:
    """Each crash-detection automation's window in seconds, failing if one name is doubled."""
    short = {
        "prefect-coldsend: crash zombie flow runs": "zombie",
        "prefect-coldsend: crash flow runs that never started": "never started",
    }
    with get_client(sync_client=True) as client:
        found = [a for a in client.read_automations() if a.name in short]
    assert len(found) == len({a.name for a in found}), [a.name for a in found]
    return {short[a.name]: a.trigger.within.total_seconds() for a in found}  # type: ignore[union-attr]


def _deployments(stack: Stack) -> dict[str, object]:
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(
                tags=DeploymentFilterTags(all_=[f"sync:web-{stack.tag}"])
            )
        )
        flows = {f.id: f.name for f in client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in deployments}
