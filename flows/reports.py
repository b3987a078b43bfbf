"""Artifacts the flows leave behind: rejects (table + full file), progress and run summaries.

Keys and titles come from `flows.naming`, so each artifact names the store and campaign it is
about. The full file of rejected rows goes to the user's `ReportStorage` block when one is
saved, and is linked at an address a browser opens; without one it stays in the reports
directory of the machine that ran the flow, and the artifact says so in words (never a
``file://`` link: browsers refuse those from a web page).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

from blocks.storage import ReportStorage
from connectors.csv_file import neutralize_cell
from flows.naming import slugify

__all__ = [
    "REJECTS_TABLE_MAX",
    "REPORT_STORAGE_ENV",
    "Progress",
    "RejectRow",
    "RejectsFile",
    "load_report_storage",
    "markdown_table",
    "neutralize_cell",
    "publish_rejects",
    "publish_summary",
    "reports_dir",
    "sync_outcome",
]

# Every rejected row up to this many is in the table artifact itself (the UI pages through
# it); beyond it the table shows the first ones and the full file is linked.
REJECTS_TABLE_MAX = 1_000
REPORT_STORAGE_ENV = "COLDSEND_REPORT_STORAGE"

_log = logging.getLogger(__name__)

RejectRow = Mapping[str, str | int | None]


def reports_dir() -> Path:
    """Where CSV reports go without a storage block: $COLDSEND_REPORTS_DIR, else
    <PREFECT_HOME>/coldsend-reports."""
    configured = os.environ.get("COLDSEND_REPORTS_DIR")
    base = Path(configured) if configured else Path(PREFECT_HOME.value()) / "coldsend-reports"
    base.mkdir(parents=True, exist_ok=True)
    return base


def load_report_storage() -> ReportStorage | None:
    """The `ReportStorage` block named by $COLDSEND_REPORT_STORAGE, else the one named
    ``default``, else None.

    Raises:
        ValueError: $COLDSEND_REPORT_STORAGE names a block that does not exist.
    """
    name = os.environ.get(REPORT_STORAGE_ENV, "").strip()
    if name:
        name = name.removeprefix(ReportStorage.get_block_type_slug() + "/")
        try:
            return cast(ReportStorage, ReportStorage.load(name))
        except ValueError as exc:
            raise ValueError(
                f"{REPORT_STORAGE_ENV}={name!r} names no ColdSend Report Storage block: save "
                f"one (ReportStorage(storage=...).save({name!r})) or unset the variable."
            ) from exc
    try:
        return cast(ReportStorage, ReportStorage.load("default"))
    except ValueError:
        return None
    except Exception as exc:  # no API to ask (no run context): local files
        _log.debug("No report storage: %s", exc)
        return None


def _run_label() -> str:
    try:
        ctx = get_run_context()
    except RuntimeError:
        return "local"
    run = getattr(ctx, "flow_run", None) or getattr(ctx, "task_run", None)
    return str(run.id) if run is not None else "local"


def _key(text: str) -> str:
    return slugify(text)


@dataclass(frozen=True, slots=True)
class RejectsFile:
    """Where the full list of rejected rows went.

    Attributes:
        count: Rows in the file.
        shown: Rows shown in the table artifact.
        location: The file: a local path, or the storage's own address (``s3://...``).
        link: An address a browser opens, or None (no storage with a web address).
        on_this_machine: True when the file is in the local reports directory.
    """

    count: int
    shown: int
    location: str
    link: str | None
    on_this_machine: bool

    def where(self) -> str:
        """One Markdown sentence saying where the full file is."""
        if self.link:
            return f"Every rejected row, with its row number and reason: [download the CSV]({self.link})."
        if self.on_this_machine:
            return (
                f"Every rejected row is in `{self.location}` on {socket.gethostname()}, the "
                "machine that ran this flow. Save a ColdSend Report Storage block to get a "
                "link here."
            )
        return (
            f"Every rejected row is in `{self.location}`; give the ColdSend Report Storage "
            "block a public URL to get a link here."
        )


def _csv_bytes(rows: Sequence[RejectRow], columns: list[str]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(neutralize_cell("" if row.get(c) is None else str(row[c])) for c in columns)
    return buffer.getvalue().encode("utf-8")


def _without_email(row: RejectRow) -> dict[str, str | int | None]:
    """The row for the table: the reason does not repeat the email shown beside it."""
    shown = dict(row)
    email, reason = row.get("email"), row.get("reason")
    if email and isinstance(reason, str):
        shown["reason"] = reason.replace(f" {email!r}", "").replace(f" {email}", "")
    return shown


def publish_rejects(
    rows: Sequence[RejectRow], *, key_prefix: str, title: str, kind: str = "rejected"
) -> RejectsFile | None:
    """Show rejected rows as a table artifact and keep the full list as a CSV file.

    The table holds every row up to `REJECTS_TABLE_MAX`; the file always holds them all, with
    formula-looking cells neutralised, in the user's `ReportStorage` (linked) or the local
    reports directory (named). A link artifact is made only for an address a browser opens.

    Args:
        rows: Rejected rows, each with the same keys (e.g. row, record_id, email, reason).
        key_prefix: The artifact key prefix (from `flows.naming.artifact_key`).
        title: What the rows are about, e.g. ``"salesforce-leads/acme -> Q4 outbound"``.
        kind: What the rows are, before "row(s)": "rejected", or "rejected or duplicate" when
            repeats of an email in the source are listed too.

    Returns:
        Where the file went, or None when there are no rows.
    """
    if not rows:
        return None
    columns = list(rows[0].keys())
    content = _csv_bytes(rows, columns)
    file_name = f"{_key(key_prefix)}-rejects-{_run_label()}.csv"
    storage = load_report_storage()
    if storage is not None:
        location = storage.write(file_name, content)
        link, local = storage.link(file_name), False
    else:
        path = reports_dir() / file_name
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        Path(tmp).replace(path)
        location, link, local = str(path), None, True
    shown = [_without_email(row) for row in rows[:REJECTS_TABLE_MAX]]
    rejects = RejectsFile(
        count=len(rows), shown=len(shown), location=location, link=link, on_this_machine=local
    )
    if len(shown) == len(rows):
        count = f"all {len(rows)} {kind} row(s)" if len(rows) > 1 else f"1 {kind} row"
    else:
        count = f"the first {len(shown)} of {len(rows)} {kind} rows"
    create_table_artifact(
        table=shown,
        key=_key(f"{key_prefix}-rejects"),
        description=f"{title}: {count}. {rejects.where()}",
    )
    if link:
        create_link_artifact(
            link=link,
            link_text=f"{len(rows)} {kind} rows (CSV)",
            key=_key(f"{key_prefix}-rejects-csv"),
            description=f"{title}: every rejected row with its row number and reason.",
        )
    return rejects


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small Markdown table; pipes in cells are escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def publish_summary(*, key: str, title: str, body: str, outcome: str | None = None) -> None:
    """A Markdown summary artifact closing a run: a title, the outcome in one sentence, then
    the details. The card's description is the outcome, so the artifacts list says it too."""
    # The outcome is the card's description, shown above the Markdown on every page that
    # shows the artifact; the Markdown starts with it too, for copies read elsewhere.
    lead = f"**{outcome}**\n\n" if outcome else ""
    create_markdown_artifact(
        markdown=f"# {title}\n\n{lead}{body}\n",
        key=_key(key),
        description=outcome or title,
    )


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


# Words for the sync's counts, in the order a summary lists them (the vocabulary of
# `SyncReport.counts()`; a key missing here is shown with its own name).
_COUNT_WORDS = {
    "uploaded": "uploaded",
    "already_in_campaign": "already in campaign",
    "duplicates": "already in campaign",
    "duplicate_in_source": "duplicate in source",
    "rejected": "rejected",
    "suppressed": "suppressed",
    "updated": "updated",
    "deleted": "deleted",
    "opted_out": "opted out",
    "departed": "departed",
    "could_not_remove": "could not remove",
}


def sync_outcome(
    counts: Mapping[str, int], *, source: str, campaign: str, dry_run: bool = False
) -> str:
    """The sync's outcome in one sentence, e.g. "Uploaded 875 new leads from
    salesforce-leads/acme to Q4 outbound (1,000 read: 100 already in campaign, 25 rejected)."""
    read = counts.get("read", 0)
    uploaded = counts.get("uploaded", 0)
    unaccounted = counts.get("unaccounted", 0)
    seen: set[str] = set()
    rest: list[str] = []
    for key, words in _COUNT_WORDS.items():
        value = counts.get(key, 0)
        if key == "uploaded" or not value or words in seen:
            continue
        seen.add(words)
        rest.append(f"{value:,} {words}")
    detail = f" ({read:,} read" + (": " + ", ".join(rest) if rest else "") + ")"
    if unaccounted:
        return (
            f"Incomplete: {unaccounted:,} of {read:,} rows from {source} were not accounted "
            f"for; {uploaded:,} uploaded to {campaign}" + detail + ". Run the sync again."
        )
    if dry_run:
        return (
            f"Dry run: {uploaded:,} new lead(s) from {source} would be uploaded to {campaign}"
            + detail
            + "; nothing was changed."
        )
    if uploaded:
        return f"Uploaded {uploaded:,} new lead(s) from {source} to {campaign}" + detail + "."
    return f"Nothing new to upload from {source} to {campaign}" + detail + "."
