"""Reading back what a flow run left on the Prefect server: state, artifacts, task runs, events."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentTaskRunId,
)
from prefect.client.schemas.objects import Artifact, State, TaskRun
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent

from connectors.coldsend import ColdSendClient


@dataclass
class Run:
    """One finished flow run: its final state, its id and (when it completed) its result."""

    state: State[Any]
    flow_run_id: UUID

    @property
    def result(self) -> Any:
        return self.state.result()


def run_flow(flow: Any, **parameters: Any) -> Run:
    """Call `flow` in-process and keep its state even when it fails."""
    state: State[Any] = flow(**parameters, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return Run(state=state, flow_run_id=flow_run_id)


def artifacts(flow_run_id: UUID, key: str | None = None) -> list[Artifact]:
    """Artifacts created by one flow run (optionally only those with `key`), oldest first."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])) if key else None,
        )
    return sorted(found, key=lambda a: a.created or 0)


def task_runs(flow_run_id: UUID) -> list[TaskRun]:
    """Task runs of one flow run (not of its sub-flows)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [r for r in runs if r.flow_run_id == flow_run_id]


def child_flow_runs(flow_run_id: UUID) -> list[Any]:
    """Sub-flow runs started by one flow run."""
    with get_client(sync_client=True) as client:
        parents = task_runs(flow_run_id)
        if not parents:
            return []
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_task_run_id=FlowRunFilterParentTaskRunId(any_=[t.id for t in parents])
                )
            )
        )


def campaign_events(
    name: str, campaign_id: str, *, expect: int = 1, timeout: float = 20.0
) -> list[ReceivedEvent]:
    """Events named `name` about a campaign, read back from the server's events API.

    Events reach the server asynchronously; this polls until `expect` of them are there (or
    the timeout passes, returning what arrived, so the caller's assertion says what is wrong).
    """
    deadline = time.monotonic() + timeout
    while True:
        # Built each time: the filter's default time window ends when it is created.
        event_filter = EventFilter(
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(id=[f"coldsend.campaign.{campaign_id}"]),
        )
        with get_client(sync_client=True) as client:
            # The server caps a page at 50 (the client's default of 100 is refused).
            events = list(client.read_events(filter=event_filter, limit=50).events)
        if len(events) >= expect or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def admin_client(stack: Any) -> ColdSendClient:
    """A client with every scope (test set-up that the flows' keys may not be allowed to do)."""
    return ColdSendClient(stack.coldsend.admin_key, base_url=stack.coldsend.base_url)


def new_inbox(stack: Any, email: str) -> str:
    """Register a sender inbox; returns its id."""
    with admin_client(stack) as client:
        return client.create_smtp_inbox(
            email_address=email,
            display_name="Sales",
            smtp_host="smtp.example.com",
            smtp_port=587,
            smtp_username=email,
            smtp_password="not-a-real-password",
        ).inbox_id


def key_block(stack: Any, scopes: list[str], name: str) -> str:
    """Save a ColdSend Credentials block holding a new key with `scopes`; returns its name.

    A new key is also new to the flows' per-key memory of probed scopes, so request counts
    taken with it include the probes.
    """
    from blocks import ColdSendCredentials

    key = stack.coldsend.new_key(scopes)
    ColdSendCredentials(api_key=key, base_url=stack.coldsend.base_url).save(
        f"{name}-{stack.tag}", overwrite=True
    )
    return f"{name}-{stack.tag}"
