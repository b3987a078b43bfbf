"""Deployments built from the two sources of truth: sync definitions, and deployments/prefect.yaml.

`prefect-coldsend serve [FILE]` serves every sync of a definitions file from one process (no
work pool or worker); `prefect-coldsend deploy` applies the same deployments to a work pool.
`prefect-coldsend serve --campaign-id ID --lead-store NAME` serves the deployments of
deployments/prefect.yaml, read from that file (its `{{ $COLDSEND_* }}` values filled from the
options), so serve and `prefect deploy` cannot drift apart.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml
from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval
from prefect.schedules import Schedule as PrefectSchedule
from prefect.types.entrypoint import EntrypointType

from app.definitions import Definitions, Schedule, SyncDefinition, load_definitions
from flows.campaigns import launch_campaign_when_ready
from flows.events import LAUNCH_WANTED_LABEL, LEADS_SYNCED
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses

__all__ = [
    "PREFECT_YAML",
    "deployments_for",
    "deployments_from_prefect_yaml",
    "serve_definitions",
    "serve_prefect_yaml",
]

PREFECT_YAML = Path(__file__).resolve().parents[1] / "deployments" / "prefect.yaml"
_ENV_TEMPLATE = re.compile(r"^\{\{\s*\$([A-Z0-9_]+)\s*\}\}$")


def _no_overlap() -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def _schedule(schedule: Schedule) -> PrefectSchedule:
    if schedule.cron is not None:
        return Cron(schedule.cron, timezone=schedule.timezone, active=schedule.active)
    assert schedule.interval is not None
    return Interval(schedule.interval, timezone=schedule.timezone, active=schedule.active)


def deployments_for(
    definitions: Definitions, sync: SyncDefinition, *, save_inline: bool
) -> list[RunnerDeployment]:
    """A sync's deployments, each named after the sync: its scheduled sync, its scheduled
    write-back, and (with `launch: true`) a launch triggered by its syncs.

    A campaign given by spec is ensured now (created once, then found by name), so the
    deployments carry its id. An inline source is saved as a lead store block named after the
    sync (with `save_inline`), so workers load it by name like any saved store.
    """
    from app.commands import _campaign_id

    store = definitions.lead_store(sync)
    if not isinstance(store, str):
        if not save_inline:
            raise ValueError("an inline source must be saved before it can be deployed")
        store.save(sync.name, overwrite=True)
        store = f"{store.get_block_type_slug()}/{sync.name}"
    campaign_id = _campaign_id(definitions, sync, create=True)
    assert campaign_id is not None
    common: dict[str, Any] = {"coldsend": definitions.coldsend(sync) or ""}
    tags = ["coldsend", f"sync:{sync.name}"]
    description = sync.description or f"Sync {sync.name}: {store} -> campaign {campaign_id}"
    queue = definitions.parsed.work_pool.work_queue
    module = EntrypointType.MODULE_PATH
    built: list[Any] = [
        sync_leads_to_campaign.to_deployment(
            name=sync.name,
            description=description,
            schedules=[_schedule(sync.schedule)],
            parameters={
                "campaign_id": campaign_id,
                "lead_store": store,
                **definitions.sync_parameters(sync),
                "coldsend": common["coldsend"],
            },
            concurrency_limit=_no_overlap(),
            tags=[*tags, "sync"],
            work_queue_name=queue,
            entrypoint_type=module,
        )
    ]
    if sync.write_back.enabled:
        built.append(
            write_back_statuses.to_deployment(
                name=sync.name,
                description=f"Write campaign statuses back for sync {sync.name}.",
                schedules=[_schedule(sync.write_back.schedule)],
                parameters={"campaign_id": campaign_id, "lead_store": store, **common},
                concurrency_limit=_no_overlap(),
                tags=[*tags, "write-back"],
                work_queue_name=queue,
                entrypoint_type=module,
            )
        )
    if sync.launch:
        built.append(
            launch_campaign_when_ready.to_deployment(
                name=sync.name,
                description=f"Launch the campaign of sync {sync.name} once a sync fills it.",
                parameters={"campaign_id": campaign_id, **common},
                triggers=[
                    DeploymentEventTrigger(
                        expect={LEADS_SYNCED},
                        match={
                            "prefect.resource.id": f"coldsend.campaign.{campaign_id}",
                            LAUNCH_WANTED_LABEL: "true",
                        },
                        parameters={"job_ids": "{{ event.payload.job_ids }}"},
                    )
                ],
                tags=[*tags, "launch"],
                work_queue_name=queue,
                entrypoint_type=module,
            )
        )
    return [cast(RunnerDeployment, d) for d in built]


def serve_definitions(path: Path) -> None:
    """Serve every sync of the definitions file at `path` until interrupted."""
    definitions = load_definitions(path)
    deployments = [
        deployment
        for sync in definitions.syncs
        for deployment in deployments_for(definitions, sync, save_inline=True)
    ]
    serve(*deployments)


# -- deployments/prefect.yaml --------------------------------------------------------------------


def _fill(value: Any, variables: Mapping[str, str], where: str) -> Any:
    """`value` with each ``{{ $NAME }}`` replaced from `variables`; an empty one is an error."""
    if isinstance(value, dict):
        return {k: _fill(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables, where) for v in value]
    if isinstance(value, str):
        match = _ENV_TEMPLATE.match(value.strip())
        if match:
            name = match.group(1)
            if name not in variables:
                raise ValueError(f"{where}: {name} is not set")
            return variables[name]
    return value


def _flow_at(entrypoint: str, where: str) -> Any:
    """The flow a prefect.yaml entrypoint names (``flows/sync.py:sync_leads_to_campaign``),
    imported as a module of this project."""
    file, _, attribute = entrypoint.partition(":")
    module = file.removesuffix(".py").replace("/", ".")
    try:
        flow = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{where}: cannot load entrypoint {entrypoint!r}: {exc}") from None
    if not hasattr(flow, "to_deployment"):
        raise ValueError(f"{where}: entrypoint {entrypoint!r} is not a flow")
    return flow


def deployments_from_prefect_yaml(
    variables: Mapping[str, str], path: Path = PREFECT_YAML
) -> list[RunnerDeployment]:
    """The deployments of a prefect.yaml (entrypoints of this project), ready to serve.

    Args:
        variables: Values for its ``{{ $NAME }}`` templates (COLDSEND_CAMPAIGN_ID, ...).
        path: The file (default: this project's deployments/prefect.yaml).
    """
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    built: list[Any] = []
    for entry in config.get("deployments") or []:
        name = entry["name"]
        flow = _flow_at(entry["entrypoint"], f"{path}: deployment {name!r}")
        parameters = _fill(entry.get("parameters") or {}, variables, f"{name}.parameters")
        schedules = [
            Interval(s["interval"], active=s.get("active", True))
            if "interval" in s
            else Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
            for s in entry.get("schedules") or []
        ]
        triggers = [
            DeploymentEventTrigger(
                expect=set(t["expect"]),
                match=t.get("match") or {},
                parameters=t.get("parameters") or {},
                enabled=t.get("enabled", True),
            )
            for t in entry.get("triggers") or []
        ]
        limit = entry.get("concurrency_limit")
        concurrency = (
            ConcurrencyLimitConfig(
                limit=limit["limit"],
                collision_strategy=ConcurrencyLimitStrategy(limit["collision_strategy"]),
            )
            if limit
            else None
        )
        built.append(
            flow.to_deployment(
                name=name,
                description=entry.get("description"),
                parameters=parameters,
                schedules=schedules or None,
                triggers=triggers or None,
                concurrency_limit=concurrency,
                tags=entry.get("tags") or [],
            )
        )
    return [cast(RunnerDeployment, d) for d in built]


def serve_prefect_yaml(*, campaign_id: str, lead_store: str, coldsend: str | None) -> None:
    """Serve deployments/prefect.yaml's deployments for one campaign and lead store."""
    variables = {
        "COLDSEND_CAMPAIGN_ID": campaign_id,
        "COLDSEND_LEAD_STORE": lead_store,
        "COLDSEND_BLOCK": coldsend or os.environ.get("COLDSEND_BLOCK", ""),
    }
    serve(*deployments_from_prefect_yaml(variables))
