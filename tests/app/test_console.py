"""The CLI's console logging: Prefect's own configuration plus one filter, no patched class."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from app.console import FILTER_NAME, DropRunFailures, quiet_failures_logging_config


@pytest.mark.parametrize(
    ("logger", "level", "message", "shown"),
    [
        ("prefect.flow_runs", logging.ERROR, "Encountered exception during execution", False),
        ("prefect.task_runs", logging.ERROR, "Task run failed with exception", False),
        ("prefect.flow_runs", logging.INFO, "Finished in state Failed('boom')", False),
        ("prefect.flow_runs", logging.INFO, "Finished in state Crashed('x')", False),
        ("prefect.flow_runs", logging.INFO, "Finished in state Completed()", True),
        ("prefect.flow_runs", logging.WARNING, "No shared API budget", True),
        ("prefect_coldsend.budgets", logging.ERROR, "something else failed", True),
        ("prefect", logging.ERROR, "the API is unreachable", True),
    ],
)
def test_only_run_failure_echoes_are_dropped(
    logger: str, level: int, message: str, shown: bool
) -> None:
    record = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    assert DropRunFailures().filter(record) is shown


def test_the_configuration_is_prefects_default_plus_the_filter(tmp_path: Path) -> None:
    path = quiet_failures_logging_config(tmp_path)
    assert quiet_failures_logging_config(tmp_path) == path  # written once
    config = yaml.safe_load(path.read_text())
    assert config["filters"][FILTER_NAME] == {"()": "app.console.DropRunFailures"}
    assert config["handlers"]["console"]["filters"] == [FILTER_NAME]
    assert (
        config["handlers"]["console"]["class"] == "prefect.logging.handlers.PrefectConsoleHandler"
    )
    assert config["handlers"]["api"]["class"] == "prefect.logging.handlers.APILogHandler"
    assert "filters" not in config["handlers"]["api"]  # the UI keeps every record
