"""Artifacts the flows leave behind: rejects (table + CSV file), progress and run summaries."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context
from prefect.settings import PREFECT_HOME

from connectors.csv_file import neutralize_cell

__all__ = [
    "Progress",
    "RejectRow",
    "markdown_table",
    "neutralize_cell",
    "publish_rejects",
    "publish_summary",
    "reports_dir",
]

TABLE_ROWS_SHOWN = 500


RejectRow = Mapping[str, str | int | None]


def reports_dir() -> Path:
    """Where CSV reports go: $COLDSEND_REPORTS_DIR, else <PREFECT_HOME>/coldsend-reports."""
    configured = os.environ.get("COLDSEND_REPORTS_DIR")
    base = Path(configured) if configured else Path(PREFECT_HOME.value()) / "coldsend-reports"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _run_label() -> str:
    try:
        ctx = get_run_context()
    except RuntimeError:
        return "local"
    run = getattr(ctx, "flow_run", None) or getattr(ctx, "task_run", None)
    return str(run.id) if run is not None else "local"


def _key(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)[:100]


def publish_rejects(rows: Sequence[RejectRow], *, key_prefix: str, title: str) -> Path | None:
    """Write every rejected row to a CSV file and show them as a table artifact.

    The table shows the first rows (the UI is not a spreadsheet); the CSV file has them all,
    with formula-looking cells neutralised. Returns the file's path, or None when no rows.
    """
    if not rows:
        return None
    columns = list(rows[0].keys())
    path = reports_dir() / f"{_key(key_prefix)}-rejects-{_run_label()}.csv"
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(neutralize_cell("" if row[c] is None else str(row[c])) for c in columns)
    Path(tmp).replace(path)
    shown = [dict(row) for row in rows[:TABLE_ROWS_SHOWN]]
    more = len(rows) - len(shown)
    create_table_artifact(
        table=shown,
        key=_key(f"{key_prefix}-rejects"),
        description=f"{title}: {len(rows)} rejected row(s)"
        + (f", first {len(shown)} shown; all in {path}" if more else f"; CSV at {path}"),
    )
    create_link_artifact(
        link=path.resolve().as_uri(),
        link_text=f"{len(rows)} rejected rows (CSV)",
        key=_key(f"{key_prefix}-rejects-csv"),
        description=f"{title}: every rejected row with its row number and reason.",
    )
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small Markdown table; pipes in cells are escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def publish_summary(*, key: str, title: str, body: str) -> None:
    """A Markdown summary artifact closing a run."""
    create_markdown_artifact(markdown=f"# {title}\n\n{body}\n", key=_key(key), description=title)


class Progress:
    """A progress artifact that moves as work completes (a no-op outside a run)."""

    def __init__(self, description: str) -> None:
        self._id = cast(UUID, create_progress_artifact(progress=0.0, description=description))
        self._last = 0.0

    def update(self, done: float, total: float) -> None:
        percent = 100.0 if total <= 0 else min(100.0, round(100.0 * done / total, 1))
        if percent != self._last:
            update_progress_artifact(self._id, progress=percent)
            self._last = percent

    def finish(self) -> None:
        self.update(1, 1)
