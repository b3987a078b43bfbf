"""The sync flow: read a lead store, validate, suppress, reconcile, upload, update, delete, report.

The data path of the design, one step per line of `sync_leads_to_campaign`; the books are
kept by `flows.ledger.SyncLedger`, which alone produces the `SyncReport`.
"""

from __future__ import annotations

import gc
import re
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from prefect.variables import Variable

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import (
    CsvPart,
    UploadIncomplete,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadResult,
    iter_csv_parts,
)
from connectors.leads import Lead, ResolvedMapping
from flows._common import MissingScopes, lead_store_label, load_coldsend, load_lead_store
from flows.budgets import store_budget
from flows.events import LAUNCH_WANTED_LABEL, LEADS_SYNCED, emit_campaign_event
from flows.ledger import (
    COULD_NOT_REMOVE_SHOWN,
    SOURCE_TAG_FIELD,
    PlannedRemoval,
    PlannedUpdate,
    SyncLedger,
    SyncReport,
    choose_update_path,
)
from flows.naming import (
    artifact_key,
    label_run,
    remember_campaign,
    run_tags,
    sync_name,
    sync_run_name,
    sync_title,
)
from flows.reports import (
    Progress,
    markdown_table,
    publish_rejects,
    publish_summary,
    sync_outcome,
)
from flows.tasks import (
    AccountView,
    CampaignState,
    delete_pending_leads,
    missing_change_scopes,
    put_lead_updates,
    read_campaign_state,
    read_suppressed_emails,
    start_update_job,
    start_upload_job,
    wait_for_upload,
)

__all__ = [
    "DEFAULT_MAX_UPDATES_PER_RUN",
    "SyncIncomplete",
    "SyncLedger",
    "SyncReport",
    "sync_leads_to_campaign",
]

SOURCE_ID_COLUMN = "crm_record_id"
# How far back each incremental read starts before the stored cursor (see _read_cursor).
CURSOR_OVERLAP = timedelta(minutes=10)
DRY_RUN_SAMPLE = 100
# Updates applied per run at most; the rest wait for the next run. By PUT one update costs
# about two requests (the PUT and finding the lead id): 500 stay within half of ColdSend's
# hourly budget. Through an update upload (chosen when cheaper) 500 cost about 3 requests.
DEFAULT_MAX_UPDATES_PER_RUN = 500
UPLOADABLE = frozenset({"DRAFT", "ACTIVE", "PAUSED"})


class SyncIncomplete(RuntimeError):
    """A sync that could not account for every row or apply every change; the message says
    which and why."""


def _cursor_name(lead_store: str, campaign_id: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"coldsend-cursor-{lead_store}-{campaign_id}".lower())
    return slug[:255]


def _read_cursor(name: str) -> datetime | None:
    """The stored high-water mark minus `CURSOR_OVERLAP`, or None for a full read.

    The overlap re-reads records stamped just before the mark: a transaction that commits
    late can carry an earlier SystemModstamp than records already read. Re-read leads are
    dropped by the reconcile step, so the overlap costs reads, never duplicates.
    """
    value: object = cast(object, Variable.get(name, default=""))
    if not value:
        return None
    return datetime.fromisoformat(str(value)) - CURSOR_OVERLAP


@flow(
    name="sync-leads-to-campaign",
    flow_run_name=sync_run_name,
    task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=8)),
)
def sync_leads_to_campaign(
    campaign_id: str,
    lead_store: str | LeadStore,
    coldsend: str | None = None,
    incremental: bool = True,
    suppression_list: list[str] | None = None,
    dry_run: bool = False,
    on_removed: Literal["keep", "delete_pending"] = "keep",
    max_updates_per_run: int = DEFAULT_MAX_UPDATES_PER_RUN,
    rows_per_upload: int = 10_000,
    upload_timeout_seconds: float = 900.0,
    parallel_uploads: int = 2,
    campaign_view: AccountView | None = None,
) -> SyncReport:
    """Keep a ColdSend campaign in step with a lead store: new leads, edits, opt-outs, departures.

    Reads the store (only records changed since the last complete run when the store supports
    it and `incremental` is on), validates each record, and reconciles it against the
    campaign's one export:

    * new and not suppressed: uploaded in CSV parts (one job per part, each waited for);
    * opted out in the store: never uploaded; deleted from the campaign while PENDING,
      otherwise named in the report ("opted out after contact") unless ColdSend already
      holds it UNSUBSCRIBED or BOUNCED;
    * already in the campaign with a mapped field changed: updated (changed fields only), by
      PUT or, when cheaper, by an upload with duplicate_action=update; at most
      `max_updates_per_run` per run, the rest on the next run;
    * in the campaign, uploaded from this store, and no longer in it (`on_removed` =
      "delete_pending"): deleted while PENDING, otherwise named ("left the store after
      contact"). Judging departures needs every record, so the store is then read in full.

    The run fails unless ``read == uploaded + already_in_campaign + duplicate_in_source +
    rejected + suppressed`` and every planned change was applied or reported.

    Requests to ColdSend: one listing of the account's campaigns and one export of the
    campaign (none when the listing shows it empty); other campaigns holding unsubscribed or
    bounced leads are exported once, only when a lead is about to be uploaded. When a change
    is due (or a second upload part is built while the campaign has leads), one or two scope
    checks for leads:update and leads:delete (remembered ten minutes per key). Then one
    upload and one or two job reads per part; per 10,000 updates one upload with
    duplicate_action=update and its job reads (or, for one or two, a PUT each plus finding
    their ids); per 10,000 deletions one request plus finding the ids.

    ColdSend scopes: campaigns:read and leads:read, checked before the lead store is read;
    leads:create (not for a dry run), checked by the first upload, whose 403 comes before
    anything is imported; leads:update only when an update is due and leads:delete only when
    a deletion is due: a key lacking one is told so once the store is read, before anything
    changes.

    Args:
        campaign_id: The ColdSend campaign to fill.
        lead_store: A saved lead store block, ``"<block-type>/<name>"``, e.g.
            ``"salesforce-leads/acme"``, or a lead store block itself (unsaved: the CLI's
            ``--csv``, a sync definition's inline source).
        coldsend: A ColdSend Credentials block name; default COLDSEND_API_KEY or block "default".
        incremental: Read only records changed since the last complete sync (Salesforce).
        suppression_list: Extra emails never to upload.
        dry_run: Change nothing; report what would be uploaded, updated (with a sample of the
            field changes), deleted and reported.
        on_removed: What to do with a lead of the campaign that left the store: "keep"
            (default) or "delete_pending" (delete it while PENDING, else report it).
        max_updates_per_run: Updates applied per run at most; the rest on the next run.
        rows_per_upload: Rows per CSV part (at most 10,000, ColdSend's limit).
        upload_timeout_seconds: Wall-clock deadline for each upload job.
        parallel_uploads: How many parts to upload and poll at once.
        campaign_view: The campaign as the caller listed it moments ago (the pipeline passes
            its ensure step's listing); the sync then does not list the account again.

    Returns:
        A `SyncReport` with the counts and actions.

    Raises:
        SyncIncomplete: Some rows could not be accounted for (failed or timed-out jobs), a
            change failed, or the campaign cannot take leads (COMPLETED or FAILED).
        MissingScopes: The key lacks a scope the sync needs (all missing ones are named).

    Example:
        ```python
        from flows import sync_leads_to_campaign

        report = sync_leads_to_campaign(campaign_id="...", lead_store="salesforce-leads/acme")
        print(report.uploaded, "new leads,", report.updated, "updated")
        ```
    """
    logger = get_run_logger()
    _check_parameters(
        campaign_id, on_removed, max_updates_per_run, rows_per_upload, parallel_uploads,
        campaign_view,
    )  # fmt: skip
    credentials = load_coldsend(coldsend)
    store = load_lead_store(lead_store)
    lead_store = lead_store_label(lead_store)
    departures = on_removed == "delete_pending"

    # ColdSend first: a key missing a read scope or a campaign that cannot take leads fails
    # the run before the lead store is touched.
    cursor_name = _cursor_name(lead_store, campaign_id)
    since = _read_since(cursor_name, store, incremental=incremental and not departures)
    state = read_campaign_state(
        credentials,
        campaign_id,
        suppression_list or [],
        campaign_view,
        store.custom_field_names(),
    )
    _label_sync_run(lead_store, campaign_id, state.name)
    _log_start(store, state, since, dry_run)
    # read -> validate -> suppress -> reconcile, streamed; the ledger plans the changes.
    # Every request to the store's account is paid from its shared budget (Google user,
    # HubSpot app, Salesforce org), on every worker.
    source = store.lead_source(store_budget(store))
    ledger = SyncLedger(
        campaign=state.existing,
        suppressed=state.suppressed,
        suppressed_elsewhere=_elsewhere(credentials, state),
        store_label=store.describe(),
        compared_fields=lambda: _mapped_fields(source),
        source_tag=lead_store,
        adopt_tags=departures,
        dry_run=dry_run,
    )
    gate = _ChangeScopeGate(
        credentials, ledger, departures=departures and since is None, check=not dry_run
    )
    parts = gate.parts(
        iter_csv_parts(
            ledger.filter(source.read(since=since)),
            custom_fields=store.custom_field_names(),
            source_id_column=SOURCE_ID_COLUMN,
            max_rows=rows_per_upload,
            extra_columns={SOURCE_TAG_FIELD: lead_store},
        )
    )
    closed = state.status not in UPLOADABLE and not dry_run
    sample: list[dict[str, str]] = []
    with _older_objects_set_aside():
        # chunk -> upload + poll
        if dry_run or closed:
            _plan_parts(parts, ledger, sample)
        else:
            _upload_all(
                parts,
                ledger=ledger,
                credentials=credentials,
                campaign_id=campaign_id,
                timeout=upload_timeout_seconds,
                parallel=parallel_uploads,
                label=f"{lead_store} to {state.name or campaign_id}",
            )

    # update -> delete: changes to leads already in the campaign.
    if not (dry_run or closed):
        _apply_updates(
            ledger,
            credentials=credentials,
            campaign_id=campaign_id,
            state=state,
            cap=max_updates_per_run,
            custom_fields=store.custom_field_names(),
            timeout=upload_timeout_seconds,
        )
        _apply_removals(
            ledger,
            credentials=credentials,
            campaign_id=campaign_id,
            listed=state.pending + ledger.uploaded,
        )
    elif dry_run:
        ledger.updates_due(max_updates_per_run)

    # report
    report = ledger.report(
        campaign_id=campaign_id,
        campaign_name=state.name,
        campaign_status=state.status,
        lead_store=lead_store,
    )
    _record_columns(report, store, source)
    rejects = publish_rejects(
        ledger.rejected_rows(),
        key_prefix=artifact_key("sync", lead_store, state.name or campaign_id),
        title=sync_title(lead_store, campaign_id, state.name),
        kind="rejected or duplicate" if ledger.duplicate_in_source else "rejected",
    )
    report.rejects_csv = rejects.location if rejects else None
    _publish_sync_summary(report, store.describe(), sample, rejects.where() if rejects else "")
    _fail_unless_complete(report, closed=closed)
    if dry_run:
        logger.info("Dry run: %s", _plan_words(report))
        return report

    cursor = ledger.cursor()
    if cursor is not None and store.supports_incremental:
        Variable.set(cursor_name, cursor.isoformat(), overwrite=True)
        report.cursor = cursor.isoformat()
    emit_campaign_event(
        LEADS_SYNCED,
        campaign_id,
        name=state.name,
        payload={
            **report.counts(),
            "could_not_remove": [
                lead.model_dump() for lead in report.could_not_remove[:COULD_NOT_REMOVE_SHOWN]
            ],
            "job_ids": report.job_ids,
            "lead_store": lead_store,
        },
        labels={LAUNCH_WANTED_LABEL: str(report.uploaded > 0 or state.status == "DRAFT").lower()},
        lead_store=lead_store,
    )
    logger.info("Synced %s", _count_words(report))
    for lead in report.could_not_remove[:COULD_NOT_REMOVE_SHOWN]:
        logger.warning("Could not remove %s from the campaign: %s", lead.email, lead.reason)
    return report


def _mapped_fields(source: object) -> frozenset[str]:
    """The lead fields the source's mapping feeds, once its read has resolved the mapping."""
    resolved = getattr(source, "resolved_mapping", None)
    return frozenset(resolved.columns) if isinstance(resolved, ResolvedMapping) else frozenset()


def _record_columns(report: SyncReport, store: LeadStore, source: object) -> None:
    """Which source column fed each lead field, and the columns that fed none."""
    resolved = getattr(source, "resolved_mapping", None)
    if not isinstance(resolved, ResolvedMapping):
        return
    written = {c.casefold() for c in store.written_columns()}
    report.columns = {k.removeprefix("custom:"): v for k, v in resolved.columns.items()}
    report.unused_columns = [c for c in resolved.unused if c.casefold() not in written]
    get_run_logger().info(
        "Columns: %s; unused: %s",
        ", ".join(f"{k} <- {v!r}" for k, v in report.columns.items()),
        ", ".join(repr(c) for c in report.unused_columns) or "none",
    )


def _label_sync_run(lead_store: str, campaign_id: str, campaign_name: str) -> None:
    """Name the run after its store and campaign and tag it (Prefect API calls only)."""
    remember_campaign(campaign_id, name=campaign_name, lead_store=lead_store)
    label_run(
        "sync " + sync_title(lead_store, campaign_id, campaign_name),
        run_tags(
            lead_store=lead_store,
            campaign=campaign_name or campaign_id,
            sync=sync_name(lead_store, campaign_id, campaign_name),
        ),
    )


def _check_parameters(
    campaign_id: str,
    on_removed: str,
    max_updates_per_run: int,
    rows_per_upload: int,
    parallel_uploads: int,
    campaign_view: AccountView | None,
) -> None:
    if on_removed not in ("keep", "delete_pending"):
        raise ValueError(f"on_removed must be 'keep' or 'delete_pending', got {on_removed!r}")
    if max_updates_per_run < 0:
        raise ValueError(f"max_updates_per_run must be 0 or more, got {max_updates_per_run}")
    if not 1 <= rows_per_upload <= 10_000:
        raise ValueError(f"rows_per_upload must be between 1 and 10,000, got {rows_per_upload}")
    if parallel_uploads < 1:
        raise ValueError(f"parallel_uploads must be at least 1, got {parallel_uploads}")
    if campaign_view is not None and campaign_view.campaign_id != campaign_id:
        raise ValueError(
            f"campaign_view describes campaign {campaign_view.campaign_id}, not {campaign_id}"
        )


def _read_since(name: str, store: LeadStore, *, incremental: bool) -> datetime | None:
    """Where this run's read starts: None (a full read) unless incremental and supported.

    With on_removed="delete_pending" the caller passes incremental=False: a departure is a
    record the read no longer returns, which only a full read can show (a deleted record or
    one edited out of the store's filters is never in an incremental read).
    """
    return _read_cursor(name) if incremental and store.supports_incremental else None


def _log_start(
    store: LeadStore, state: CampaignState, since: datetime | None, dry_run: bool
) -> None:
    get_run_logger().info(
        "Syncing %s into campaign %r (%s, %d leads, %d PENDING)%s%s; %d emails suppressed by "
        "it or the suppression list, %d other campaign(s) hold unsubscribed or bounced leads",
        store.describe(),
        state.name,
        state.status,
        len(state.existing),
        state.pending,
        f", records changed since {since.isoformat()}" if since else "",
        " (dry run)" if dry_run else "",
        len(state.suppressed),
        len(state.suppressing),
    )


def _elsewhere(
    credentials: ColdSendCredentials, state: CampaignState
) -> Callable[[], frozenset[str]] | None:
    suppressing = list(state.suppressing)
    if not suppressing:
        return None
    return lambda: read_suppressed_emails(credentials, suppressing)


class _ChangeScopeGate:
    """Lets upload parts through once it is safe: leads:update and leads:delete are needed only
    when a change is due, and a key lacking one must fail the run before anything changes.

    It looks one part ahead. When the read ends before a second part is built (every re-run
    with fewer than a part of new leads), the whole plan is known before the first upload:
    the scopes are checked only if a change is due, so a run with nothing to change costs no
    check at all. When a second part comes while the campaign already has leads (a change may
    still turn up), the scopes are checked before the first upload; if one is missing, the
    rest of the read is held (parts kept in memory) until the plan is known. After the read
    the ledger's plan is finished here (opted-out repeats, departures).
    """

    def __init__(
        self,
        credentials: ColdSendCredentials,
        ledger: SyncLedger,
        *,
        departures: bool,
        check: bool,
    ) -> None:
        self._credentials = credentials
        self._ledger = ledger
        self._departures = departures
        self._check = check
        self._missing: list[str] | None = None
        self._granted: list[str] = []

    def parts(self, parts: Iterator[CsvPart]) -> Iterator[CsvPart]:
        ahead = next(parts, None)
        while ahead is not None:
            following = next(parts, None)
            if following is None:  # the read is over: the plan is known
                self._finish()
                yield ahead
                return
            if self._check and self._ledger.campaign and self._probe():
                held = [ahead, following, *parts]  # the rest of the read
                self._finish()
                yield from held
                return
            yield ahead
            ahead = following
        self._finish()

    def _probe(self) -> list[str]:
        if self._missing is None:
            self._missing, self._granted = missing_change_scopes(self._credentials)
        return self._missing

    def _finish(self) -> None:
        ledger = self._ledger
        ledger.finish(departures=self._departures)
        if not self._check or not (ledger.updates or ledger.removals):
            return
        missing = self._probe()
        due = []
        if "leads:update" in missing and ledger.updates:
            due.append(("leads:update", f"{len(ledger.updates)} lead(s) changed in the store"))
        if "leads:delete" in missing and ledger.removals:
            due.append(
                (
                    "leads:delete",
                    f"{len(ledger.removals)} PENDING lead(s) opted out or left the store",
                )
            )
        if due:
            raise MissingScopes(
                "sync",
                [scope for scope, _ in due],
                self._granted,
                when=(
                    "when leads need changing; this run has "
                    + " and ".join(why for _, why in due)
                    + ", and nothing was changed"
                ),
            )


def _plan_parts(parts: Iterator[CsvPart], ledger: SyncLedger, sample: list[dict[str, str]]) -> None:
    """Build every part without sending it (dry run, or a campaign that takes no uploads)."""
    for part in parts:
        ledger.parts += 1
        for ref in part.rows:
            if len(sample) < DRY_RUN_SAMPLE:
                sample.append({"row": str(ref.row_number or ""), "email": ref.email})


def _apply_updates(
    ledger: SyncLedger,
    *,
    credentials: ColdSendCredentials,
    campaign_id: str,
    state: CampaignState,
    cap: int,
    custom_fields: list[str],
    timeout: float,
) -> None:
    """Apply the planned updates (at most `cap`) by the cheaper path, recording each outcome.

    Updates an upload can carry (every change sets a non-empty value) go by one upload with
    duplicate_action=update per 10,000 leads when `choose_update_path` says it costs fewer
    requests than PUT plus finding the ids; the rest (a value cleared, a custom field removed)
    always go by PUT.
    """
    due = ledger.updates_due(cap)
    if not due:
        return
    logger = get_run_logger()
    by_upload = [u for u in due if u.by_upload]
    path = choose_update_path(len(by_upload), len(state.existing))
    by_put = due if path == "put" else [u for u in due if not u.by_upload]
    ledger.update_path = path if by_put or path == "upload" else ""
    if path == "upload" and by_upload:
        _update_by_upload(ledger, by_upload, credentials, campaign_id, custom_fields, timeout)
    if by_put:
        outcome = put_lead_updates(
            credentials, campaign_id, cast(list[PlannedUpdate], quote(by_put)), len(state.existing)
        )
        ledger.record_updated(outcome.done)
        by_email = {u.lead.email: u for u in by_put}
        for email, why in outcome.failed:
            ledger.record_failed_update(by_email[email], why)
        for email, why in outcome.skipped:
            logger.info("Not updated %s: %s", email, why)
    logger.info(
        "Updated %d of %d changed lead(s) (%s)%s",
        ledger.updated,
        len(ledger.updates),
        path,
        f"; {ledger.updates_deferred} left for the next run" if ledger.updates_deferred else "",
    )


def _update_by_upload(
    ledger: SyncLedger,
    updates: list[PlannedUpdate],
    credentials: ColdSendCredentials,
    campaign_id: str,
    custom_fields: list[str],
    timeout: float,
) -> None:
    # Each row carries the lead's values now, with its custom-field patch applied; an empty
    # cell changes nothing, so the tag column touches only the leads whose tag is added.
    names = list(custom_fields)
    rows: list[Lead] = []
    for update in updates:
        patch = update.changes.get("custom_fields") or {}
        if SOURCE_TAG_FIELD in patch and SOURCE_TAG_FIELD not in names:
            names.append(SOURCE_TAG_FIELD)
        values = {**update.lead.custom_fields, **{k: v for k, v in patch.items() if v}}
        rows.append(replace(update.lead, custom_fields=values))
    by_email = {u.lead.email: u for u in updates}
    for part in iter_csv_parts(rows, custom_fields=names, source_id_column=SOURCE_ID_COLUMN):
        quoted = cast(CsvPart, quote(part))
        job_id = start_update_job(credentials, campaign_id, quoted)
        try:
            result = wait_for_upload(credentials, campaign_id, job_id, quoted, timeout)
        except (UploadJobFailed, UploadJobTimedOut, UploadIncomplete) as exc:
            for ref in part.rows:
                ledger.record_failed_update(by_email[ref.email], str(exc))
            continue
        ledger.record_updated(result.success + result.duplicate)
        for err in result.row_errors:
            if err.email in by_email:
                ledger.record_failed_update(by_email[err.email], err.error)


def _apply_removals(
    ledger: SyncLedger, *, credentials: ColdSendCredentials, campaign_id: str, listed: int
) -> None:
    """Delete the PENDING leads planned for removal; ColdSend keeps any contacted meanwhile."""
    if not ledger.removals:
        return
    removals = cast(list[PlannedRemoval], quote(ledger.removals))
    outcome = delete_pending_leads(credentials, campaign_id, removals, listed)
    ledger.record_deleted(outcome.done)
    by_email = {r.email: r for r in ledger.removals}
    for email, why in outcome.skipped:
        removal = by_email.get(email)
        if removal is not None:
            ledger.record_not_deleted(removal, why)
    get_run_logger().info(
        "Deleted %d of %d lead(s) planned for removal", outcome.done, len(ledger.removals)
    )


def _fail_unless_complete(report: SyncReport, *, closed: bool) -> None:
    if closed and report.unaccounted:
        raise SyncIncomplete(
            f"{report.unaccounted} new lead(s) cannot be uploaded: campaign "
            f"{report.campaign_name!r} is {report.campaign_status} and ColdSend accepts leads "
            "only in DRAFT, ACTIVE or PAUSED campaigns. Sync them into another campaign; "
            "nothing was uploaded."
        )
    problems = [*report.failed_parts, *report.failed_actions[:20]]
    if report.unaccounted or problems:
        raise SyncIncomplete(
            f"{report.unaccounted} of {report.read} rows were not accounted for and "
            f"{len(report.failed_actions)} change(s) failed ({_count_words(report)}). "
            + "; ".join(problems)
            + " Run the sync again: what is done is not redone, the rest is retried."
        )


def _count_words(report: SyncReport) -> str:
    counts = report.counts()
    words = ", ".join(
        f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n or name == "read"
    )
    if report.updates_deferred:
        words += f", {report.updates_deferred} updates left for the next run"
    return words


def _plan_words(report: SyncReport) -> str:
    return (
        f"{report.read} read; would upload {report.to_upload} in {report.parts} part(s), "
        f"update {report.to_update}, delete {report.to_delete}, report "
        f"{len(report.could_not_remove)} that cannot be removed"
    )


@contextmanager
def _older_objects_set_aside() -> Iterator[None]:
    """Keep the objects that exist before the read-and-upload loop out of full collections.

    The loop allocates objects per record by the hundred thousand, which triggers the cyclic
    garbage collector's full collections, and each one walks every object of the process:
    in a Prefect flow-run process, over a million of Prefect's and pydantic's. `gc.freeze`
    sets those aside for the loop (objects made during the loop are collected as usual) and
    `gc.unfreeze` hands them back to the collector afterwards, so nothing is kept longer than
    the loop. Measured: about 4 us of GC per lead without it. Bench figure it holds up:
    "client CPU <= 15 us/lead (marginal) for sync".
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _upload_all(
    parts: Iterator[CsvPart],
    *,
    ledger: SyncLedger,
    credentials: ColdSendCredentials,
    campaign_id: str,
    timeout: float,
    parallel: int,
    label: str,
) -> None:
    """Upload parts as they are built, at most `parallel` in flight, recording each job's
    result in the ledger.

    Parts are consumed lazily so memory holds at most `parallel` parts at once.
    """
    logger = get_run_logger()
    progress = Progress(f"Uploading leads from {label}")
    inflight: deque[tuple[CsvPart, PrefectFuture[UploadResult]]] = deque()
    rows_done = 0

    def settle(part: CsvPart, future: PrefectFuture[UploadResult]) -> None:
        nonlocal rows_done
        try:
            ledger.record_upload(future.result())
        except (UploadJobFailed, UploadJobTimedOut, UploadIncomplete) as exc:
            ledger.record_failed_part(f"part of {part.row_count} rows: {exc}")
            logger.error("Upload part failed: %s", exc)
        rows_done += part.row_count
        progress.update(rows_done, max(ledger.to_upload, rows_done))

    for part in parts:
        # Starting a job is quick; waiting is the slow part and runs in the flow's task runner.
        # quote(): Prefect need not walk 10,000 row references looking for futures.
        quoted = cast(CsvPart, quote(part))
        job_id = start_upload_job(credentials, campaign_id, quoted)
        ledger.record_part(job_id)
        logger.info("Part %d: %d rows, upload job %s", ledger.parts, part.row_count, job_id)
        inflight.append(
            (part, wait_for_upload.submit(credentials, campaign_id, job_id, quoted, timeout))
        )
        while len(inflight) >= parallel:
            settle(*inflight.popleft())
    while inflight:
        settle(*inflight.popleft())
    progress.finish()


def _publish_sync_summary(
    report: SyncReport, source: str, sample: list[dict[str, str]], rejects_where: str = ""
) -> None:
    would = " (would be)" if report.dry_run else ""
    rows: list[tuple[str, object]] = [
        ("read from source", report.read),
        ("uploaded", report.uploaded),
        ("already in campaign", report.already_in_campaign),
        ("duplicate in source", report.duplicate_in_source),
        ("rejected", report.rejected),
        ("suppressed (opted out, unsubscribed, bounced, suppression list)", report.suppressed),
        ("not accounted for", report.unaccounted),
    ]
    actions: list[tuple[str, object]] = [
        ("opted out in the store", report.opted_out),
        ("departed from the store" if report.departures_checked else "departed (not checked)",
         report.departed),
        (f"to upload{would}", report.to_upload),
        ("to update", report.to_update),
        ("updated" + (f" (by {report.update_path})" if report.update_path else ""), report.updated),
        ("updates left for the next run", report.updates_deferred),
        ("to delete (PENDING)", report.to_delete),
        ("deleted", report.deleted),
        ("could not remove (named below)", len(report.could_not_remove)),
    ]  # fmt: skip
    body = f"Source: {source}\n\nCampaign: {report.campaign_name} (`{report.campaign_id}`)\n\n"
    body += markdown_table(("rows read", "count"), rows)
    body += "\n\n" + markdown_table(("actions on leads counted above", "leads"), actions)
    body += f"\n\nUpload jobs: {', '.join(report.job_ids) or 'none'}\n"
    if report.columns:
        body += "\n## Columns\n\n" + markdown_table(
            ("lead field", "source column"), list(report.columns.items())
        )
        unused = ", ".join(f"`{c}`" for c in report.unused_columns) or "none"
        body += f"\n\nSource columns not used: {unused}\n"
    if report.failed_parts or report.failed_actions:
        failed = [*report.failed_parts, *report.failed_actions]
        body += "\n**Failed:**\n\n" + "\n".join(f"- {p}" for p in failed[:100])
    if report.could_not_remove:
        body += "\n\n## Could not remove from the campaign\n\n"
        body += markdown_table(
            ("email", "reason"),
            [
                (lead.email, lead.reason)
                for lead in report.could_not_remove[:COULD_NOT_REMOVE_SHOWN]
            ],
        )
    if report.changes_sample:
        body += "\n\n## Field changes" + (" (would be made)" if report.dry_run else "") + "\n\n"
        body += markdown_table(
            ("email", "field", "campaign has", "store has"),
            [(c.email, c.field, c.old, c.new) for c in report.changes_sample],
        )
    if rejects_where:
        body += f"\n\nRejected rows and duplicates in the source. {rejects_where}\n"
    if sample:
        body += "\n\n## Would be uploaded (first rows)\n\n"
        body += markdown_table(("row", "email"), [(s["row"], s["email"]) for s in sample])
    sync = sync_title(report.lead_store, report.campaign_id, report.campaign_name)
    counts = report.counts()
    if report.dry_run:
        counts["uploaded"] = report.to_upload  # the sentence says "would be uploaded"
    publish_summary(
        key=artifact_key(
            "sync", report.lead_store, report.campaign_name or report.campaign_id, "summary"
        ),
        title=("Sync dry run: " if report.dry_run else "Sync: ") + sync,
        body=body,
        outcome=sync_outcome(
            counts,
            source=report.lead_store,
            campaign=report.campaign_name or report.campaign_id,
            dry_run=report.dry_run,
        ),
    )
