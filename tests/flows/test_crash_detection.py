"""Crash detection: the automations the deploy step creates, and the settings it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.crash_detection import crash_detection_automations, create_crash_detection


def test_a_run_is_a_zombie_after_three_missed_heartbeats_and_stuck_after_never_started() -> None:
    zombie, never = crash_detection_automations(30, timedelta(minutes=4))

    for automation, after, within in (
        (zombie, "prefect.flow-run.heartbeat", 90),
        (never, "prefect.flow-run.Pending", 240),
    ):
        trigger = automation.trigger
        assert isinstance(trigger, EventTrigger)
        assert trigger.after == {after}
        assert trigger.posture == Posture.Proactive
        assert trigger.within == timedelta(seconds=within)
        # A heartbeat or any end of the run answers the trigger; one run, one automation firing.
        assert trigger.expect == {
            "prefect.flow-run.heartbeat",
            "prefect.flow-run.Completed",
            "prefect.flow-run.Failed",
            "prefect.flow-run.Cancelled",
            "prefect.flow-run.Crashed",
        }
        assert trigger.for_each == {"prefect.resource.id"}
        (action,) = automation.actions
        assert action.type == "change-flow-run-state"
        assert action.state.value == "CRASHED"  # type: ignore[union-attr]
        assert "Run it again" in (action.message or "")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("heartbeat", "never_started", "message"),
    [
        ("5", 10, "heartbeat_seconds must be at least 30"),
        ("half a minute", 10, "heartbeat_seconds must be a whole number of seconds"),
        ("30", "ten", "never_started_minutes must be a number of minutes"),
        ("30", 0, "never_started must be positive"),
    ],
)
def test_the_deploy_step_refuses_bad_values_before_touching_the_server(
    heartbeat: str, never_started: float | str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_crash_detection(heartbeat, never_started)


def test_without_a_value_or_heartbeats_the_step_asks_for_the_workers_interval() -> None:
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        pytest.raises(ValueError, match="pass heartbeat_seconds"),
    ):
        create_crash_detection("", 10)
