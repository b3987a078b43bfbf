"""Crash detection for deployment runs: Prefect's zombie automations, created at deploy time.

A worker (or its machine) that dies leaves its flow runs Running for ever: nothing is left
to report their end. Prefect's documented answer ("detect zombie flows") is the flow-run
heartbeat (`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, 180 s by default in Prefect 3.8) plus an
automation that marks a run Crashed when its heartbeats stop. These are created here, by
name, so that every deploy leaves the server with them:

- ``prefect-coldsend: crash zombie flow runs``: no heartbeat nor end within three heartbeat
  intervals of the last heartbeat.
- ``prefect-coldsend: crash flow runs that never started``: a run killed before its first
  heartbeat (claimed by a worker that died, or killed between Pending and Running) has no
  heartbeat to miss; Crashed when neither a heartbeat nor an end follows its Pending within
  ``never_started`` (10 minutes by default: starting a flow-run process can take over a
  minute on a loaded machine).

Every flow of this project reconciles, so running a crashed sync again finishes its work with
nothing lost or doubled. The deploy build step `create_crash_detection` (deployments/
prefect.yaml) and `prefect-coldsend deploy` call `ensure_crash_detection`.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import get_current_settings

__all__ = [
    "MISSED_BEATS",
    "NEVER_STARTED",
    "crash_detection_automations",
    "create_crash_detection",
    "ensure_crash_detection",
]

# A run is a zombie after this many heartbeat intervals without a heartbeat.
MISSED_BEATS = 3
NEVER_STARTED = timedelta(minutes=10)
PREFIX = "prefect-coldsend: "
_RERUN = "Run it again (its work reconciles: nothing is lost or doubled)."
_ENDED = frozenset(
    {
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
    }
)


def _heartbeat_seconds(heartbeat_seconds: int | str | None) -> int:
    """The workers' heartbeat interval: the value given, else this process's Prefect setting."""
    if heartbeat_seconds is None or str(heartbeat_seconds).strip() == "":
        configured = get_current_settings().flows.heartbeat_frequency
        if configured is None:
            raise ValueError(
                "flow-run heartbeats are off in this process (PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
                " is None): crash detection needs the workers' heartbeat interval; pass "
                "heartbeat_seconds (30 or more, as the workers' PREFECT_FLOWS_HEARTBEAT_FREQUENCY)"
            )
        return configured
    try:
        seconds = int(str(heartbeat_seconds).strip())
    except ValueError:
        raise ValueError(
            f"heartbeat_seconds must be a whole number of seconds (the workers' "
            f"PREFECT_FLOWS_HEARTBEAT_FREQUENCY), got {heartbeat_seconds!r}"
        ) from None
    if seconds < 30:
        raise ValueError(
            f"heartbeat_seconds must be at least 30 (Prefect's minimum heartbeat interval), "
            f"got {seconds}"
        )
    return seconds


def crash_detection_automations(
    heartbeat_seconds: int, never_started: timedelta = NEVER_STARTED
) -> list[AutomationCore]:
    """The two automations, not yet saved.

    Args:
        heartbeat_seconds: The workers' heartbeat interval (PREFECT_FLOWS_HEARTBEAT_FREQUENCY).
        never_started: How long a Pending run may go without a heartbeat or an end.
    """
    if never_started <= timedelta(0):
        raise ValueError(f"never_started must be positive, got {never_started}")

    def crash_after(name: str, after: str, within: timedelta, why: str) -> AutomationCore:
        return AutomationCore(
            name=PREFIX + name,
            description=why,
            trigger=EventTrigger(
                after={after},
                expect={"prefect.flow-run.heartbeat", *_ENDED},
                match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=within,
            ),
            actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"{why} {_RERUN}")],
        )

    zombie_after = timedelta(seconds=MISSED_BEATS * heartbeat_seconds)
    return [
        crash_after(
            "crash zombie flow runs",
            "prefect.flow-run.heartbeat",
            zombie_after,
            f"No heartbeat for {int(zombie_after.total_seconds())} s: its worker or machine died.",
        ),
        crash_after(
            "crash flow runs that never started",
            "prefect.flow-run.Pending",
            never_started,
            f"Pending for {int(never_started.total_seconds())} s without a heartbeat: the "
            "worker that claimed it died.",
        ),
    ]


def ensure_crash_detection(
    heartbeat_seconds: int | str | None = None, never_started: timedelta = NEVER_STARTED
) -> list[str]:
    """Create the automations, or update those of the same name; returns their names.

    Args:
        heartbeat_seconds: The workers' PREFECT_FLOWS_HEARTBEAT_FREQUENCY (None or "": this
            process's setting, Prefect's default 180 when unset).
        never_started: How long a Pending run may go without a heartbeat or an end.
    """
    wanted = crash_detection_automations(_heartbeat_seconds(heartbeat_seconds), never_started)
    with get_client(sync_client=True) as client:
        for automation in wanted:
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
            else:
                client.create_automation(automation)
    return [automation.name for automation in wanted]


def create_crash_detection(
    heartbeat_seconds: str = "", never_started_minutes: float | str = 10
) -> dict[str, list[str]]:
    """Deployment build step: `prefect deploy` creates the crash-detection automations.

    In deployments/prefect.yaml::

        build:
          - flows.crash_detection.create_crash_detection:
              heartbeat_seconds: "{{ $PREFECT_FLOWS_HEARTBEAT_FREQUENCY }}"
    """
    try:
        minutes = float(never_started_minutes)
    except ValueError:
        raise ValueError(
            f"never_started_minutes must be a number of minutes, got {never_started_minutes!r}"
        ) from None
    names = ensure_crash_detection(heartbeat_seconds, timedelta(minutes=minutes))
    print(f" > crash detection (automations): {', '.join(names)}")
    return {"crash_detection": names}
