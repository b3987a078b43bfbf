"""What the CLI shows on the terminal: Prefect's console logging with one line per error.

A failed run makes Prefect log the failure on its console several times (the exception with
its traceback, the task's and the flow's final states) before the CLI prints its own line.
The CLI gives Prefect a logging configuration of its own: Prefect's default one, with a
filter on the console handler that drops those ERROR records of flow and task runs (the API
log handler still records them, traceback included, for the UI). It is a file named by
PREFECT_LOGGING_SETTINGS_PATH, Prefect's documented way to configure its logging, so it
holds however often Prefect sets its logging up again; no Prefect class is patched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DropRunFailures", "quiet_failures_logging_config"]

FILTER_NAME = "coldsend_cli_one_line_errors"


class DropRunFailures(logging.Filter):
    """Drop the failure echoes of flow and task runs (their ERROR records, and the final
    "Finished in state Failed(...)" line): the CLI reports the failure in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return True
        if record.levelno >= logging.ERROR:
            return False
        return not str(record.msg).startswith(
            ("Finished in state Failed", "Finished in state Crashed")
        )


def _prefect_default_config() -> dict[str, Any]:
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:  # pragma: no cover - Prefect is a dependency
        raise RuntimeError("Prefect is not installed")
    path = Path(spec.origin).parent / "logging" / "logging.yml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def quiet_failures_logging_config(directory: Path | None = None) -> Path:
    """Write (once per Prefect version) the logging configuration described above; its path.

    Args:
        directory: Where to keep the file (default: the system's temporary directory).
    """
    config = _prefect_default_config()
    config.setdefault("filters", {})[FILTER_NAME] = {"()": f"{__name__}.DropRunFailures"}
    console = config["handlers"]["console"]
    console["filters"] = [*console.get("filters", []), FILTER_NAME]
    text = yaml.safe_dump(config, sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = directory or Path(tempfile.gettempdir())
    path = folder / f"prefect-coldsend-logging-{os.getuid()}-{digest}.yml"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return path
