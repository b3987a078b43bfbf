"""Campaign flows: ensure a campaign exists as specified, and launch it when it is ready."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from pydantic import BaseModel, ConfigDict, Field

from blocks.coldsend import ColdSendCredentials
from connectors.coldsend import (
    BadRequestError,
    CampaignCreate,
    CampaignStatus,
    CampaignSummary,
    SequenceStep,
    UploadJobFailed,
    UploadJobTimedOut,
    Variant,
    wait_for_upload_job,
)
from connectors.coldsend.models import Sequences, Variants
from flows._common import load_coldsend, scopes_checked, verify_scopes
from flows.budgets import budgeted_client
from flows.events import CAMPAIGN_LAUNCHED, emit_campaign_event
from flows.naming import (
    artifact_key,
    campaign_label,
    ensure_run_name,
    label_run,
    launch_run_name,
    remember_campaign,
    run_tags,
)
from flows.reports import markdown_table, publish_summary
from flows.tasks import AccountView, FinalError, retry_unless_client_error

__all__ = [
    "CampaignNotLaunchable",
    "CampaignSpec",
    "EnsuredCampaign",
    "FollowUpSpec",
    "LaunchReport",
    "VariantSpec",
    "ensure_campaign",
    "launch_campaign_when_ready",
]


class CampaignNotLaunchable(FinalError):
    """The campaign cannot be launched; the message names what is missing or wrong."""


VariantSpec = Variant
"""One version of an email (A/B testing): the client's `Variant`, so both check the same rules."""

FollowUpSpec = SequenceStep
"""A follow-up step sent when the trigger holds after `wait_days`: the client's `SequenceStep`."""


class CampaignSpec(CampaignCreate):
    """Everything needed to create a campaign and make it launch-ready, found again by name.

    The settings, their limits and checks are the client's `CampaignCreate` (one definition of
    what ColdSend accepts); the spec adds the content the create cannot carry and the inboxes.

    Example:
        ```python
        spec = CampaignSpec(
            name="Q3 outbound: EMEA fintech",
            inbox_emails=["sales@acme.example"],
            variants=[VariantSpec(subject_template="Hi {{first_name}}", email_content="...")],
        )
        campaign_id = ensure_campaign(spec)
        ```
    """

    # A spec holds no secret: name the offending input in validation errors.
    model_config = ConfigDict(hide_input_in_errors=False)

    variants: Variants = Field(default_factory=list)
    sequences: Sequences = Field(default_factory=list)
    inbox_emails: list[str] = Field(
        default_factory=list, description="Sender inboxes by address; resolved to inbox ids."
    )
    inbox_ids: list[str] = Field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """The create/update fields of the spec (everything but variants, sequences, inboxes)."""
        return self.model_dump(include=set(CampaignCreate.model_fields))


@dataclass(frozen=True, slots=True)
class EnsuredCampaign:
    """What `find_or_create_campaign` found or made.

    Attributes:
        campaign_id: The campaign's id.
        view: The campaign as the account listing showed it (DRAFT and empty when created),
            with the other campaigns holding suppressed leads; a sync can start from it.
        deferred: Inbox, variant and sequence settings left for the launch request to set
            (only when asked to defer them, and only for a DRAFT campaign).
    """

    campaign_id: str
    view: AccountView
    deferred: dict[str, Any]


# Settings a launch request can carry (`ColdSendClient.launch_campaign`).
_LAUNCH_SETTINGS = ("inbox_ids", "variants", "sequences")


@task(
    name="Find or create campaign",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def find_or_create_campaign(
    credentials: ColdSendCredentials, spec: CampaignSpec, *, defer_to_launch: bool = False
) -> EnsuredCampaign:
    """The one campaign named `spec.name`, creating it and applying the spec.

    Idempotent: a campaign found by name is only updated where it differs from the spec, and
    only while it is DRAFT or PAUSED (a running campaign is left alone and not even read).

    Requests: one listing of the account's campaigns (all pages; the name is matched here, so
    the listing also serves the sync), the inbox list when inboxes are given by address, then
    a create for a new campaign or a read for a DRAFT or PAUSED one, and one update for what
    differs.

    Args:
        defer_to_launch: For a DRAFT campaign, leave inboxes, variants and sequences in
            `EnsuredCampaign.deferred` for the launch request to set instead of updating now
            (the pipeline launches right after its sync: one request instead of two).
    """
    logger = get_run_logger()
    with scopes_checked("ensure"), budgeted_client(credentials, 2) as client:
        listing = list(client.iter_campaigns())
        matches = [c for c in listing if c.name == spec.name]
        if len(matches) > 1:
            ids = ", ".join(c.campaign_id for c in matches)
            raise CampaignNotLaunchable(
                f"{len(matches)} campaigns are named {spec.name!r} ({ids}); rename or delete the "
                "extra ones so the name identifies one campaign."
            )
        view = AccountView.from_listing(listing, matches[0].campaign_id) if matches else None
        if view is not None:
            logger.info("Found campaign %r (%s), %s", spec.name, view.campaign_id, view.status)
            if view.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
                logger.info("Campaign is %s; leaving its settings as they are", view.status)
                return EnsuredCampaign(view.campaign_id, view, {})
        # Everything that can fail is checked before the first change (the create).
        inbox_ids = list(spec.inbox_ids)
        if spec.inbox_emails:
            by_email = {i.email_address.lower(): i.inbox_id for i in client.iter_inboxes()}
            unknown = [e for e in spec.inbox_emails if e.lower() not in by_email]
            if unknown:
                raise CampaignNotLaunchable(
                    f"Sender inbox(es) not found in the ColdSend account: {', '.join(unknown)}"
                )
            inbox_ids.extend(by_email[e.lower()] for e in spec.inbox_emails)
        wanted_inboxes = sorted({i.lower() for i in inbox_ids})
        variants = [v.model_dump() for v in spec.variants]
        sequences = [s.model_dump() for s in spec.sequences]
        wanted: dict[str, Any] = {}
        if view is not None:
            campaign_id = view.campaign_id
            current = client.get_campaign(campaign_id)
            wanted = {k: v for k, v in spec.settings().items() if getattr(current, k, None) != v}
            if wanted_inboxes and wanted_inboxes != sorted(i.lower() for i in current.inbox_ids):
                wanted["inbox_ids"] = wanted_inboxes
            if variants and _plain(current.variants) != variants:
                wanted["variants"] = variants
            if sequences and _plain(current.sequences) != sequences:
                wanted["sequences"] = sequences
        else:
            if (wanted_inboxes or variants or sequences) and not defer_to_launch:
                # The create cannot carry these; make sure the update after it will be allowed.
                verify_scopes(client, "ensure", ["campaigns:update"])
            campaign_id = client.create_campaign(**spec.settings()).campaign_id
            logger.info("Created campaign %r (%s)", spec.name, campaign_id)
            created = CampaignSummary(
                campaign_id=campaign_id, name=spec.name, status=CampaignStatus.DRAFT
            )
            view = AccountView.from_listing([*listing, created], campaign_id)
            assert view is not None
            if wanted_inboxes:
                wanted["inbox_ids"] = wanted_inboxes
            if variants:
                wanted["variants"] = variants
            if sequences:
                wanted["sequences"] = sequences
        deferred: dict[str, Any] = {}
        if defer_to_launch and view.status == CampaignStatus.DRAFT:
            deferred = {k: wanted.pop(k) for k in _LAUNCH_SETTINGS if k in wanted}
            if deferred:
                logger.info("Left %s for the launch request", ", ".join(sorted(deferred)))
        if wanted:
            client.update_campaign(campaign_id, **wanted)
            logger.info("Updated %s", ", ".join(sorted(wanted)))
        return EnsuredCampaign(campaign_id, view, deferred)


def _plain(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        data = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        out.append(data)
    # Compare only the fields the spec sets, ignoring server-added ones.
    return [
        {k: v for k, v in d.items() if k in _SPEC_KEYS}
        | (
            {
                "variants": [
                    {k2: v2 for k2, v2 in dv.items() if k2 in _SPEC_KEYS} for dv in d["variants"]
                ]
            }
            if "variants" in d
            else {}
        )
        for d in out
    ]


_SPEC_KEYS = set(VariantSpec.model_fields) | set(FollowUpSpec.model_fields)


@flow(name="ensure-campaign", flow_run_name=ensure_run_name)
def ensure_campaign(spec: CampaignSpec, coldsend: str | None = None) -> str:
    """Create the campaign described by `spec`, or find it by name; return its id.

    Idempotent: run twice, it returns the same id; a campaign found by name gets only the
    settings that differ from the spec (and only while DRAFT or PAUSED). Inboxes may be given
    by address. Scopes, all checked before the first change: campaigns:read,
    sender_accounts:read (inboxes by address), campaigns:create and campaigns:update.

    Args:
        spec: Name, schedule, sending window, variants, follow-ups and inboxes.
        coldsend: A ColdSend Credentials block name (default: environment, then "default").

    Returns:
        The campaign id.

    Raises:
        CampaignNotLaunchable: Several campaigns share the name, or an inbox is unknown.
        MissingScopes: The key lacks a scope the flow needs.

    Example:
        ```python
        from flows.campaigns import CampaignSpec, VariantSpec, ensure_campaign

        campaign_id = ensure_campaign(
            CampaignSpec(
                name="Q3 outbound: EMEA fintech",
                inbox_emails=["sales@acme.example"],
                variants=[VariantSpec(subject_template="Hi {{first_name}}", email_content="...")],
            )
        )
        ```
    """
    label_run(None, run_tags(campaign=spec.name))
    campaign_id = find_or_create_campaign(load_coldsend(coldsend), spec).campaign_id
    remember_campaign(campaign_id, name=spec.name)
    return campaign_id


class LaunchReport(BaseModel):
    """What the launch flow found and did."""

    campaign_id: str
    campaign_name: str = ""
    launched: bool = False
    status: str = ""
    waited_jobs: list[str] = Field(default_factory=list)
    checks: int = 0


@task(
    name="Read campaign",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def read_campaign(
    credentials: ColdSendCredentials, campaign_id: str, *, check_update_scope: bool
) -> LaunchAttempt:
    """The campaign's name and status; for a DRAFT one, optionally check campaigns:update.

    The check costs one request that cannot change anything; the launch flow makes it only
    when it will wait for upload jobs before launching, so a key that could never launch
    fails now rather than after the wait.
    """
    with scopes_checked("launch"), budgeted_client(credentials, 1) as client:
        campaign = client.get_campaign(campaign_id)
        if check_update_scope and campaign.status == CampaignStatus.DRAFT:
            verify_scopes(client, "launch", ["campaigns:update"])
    status = str(campaign.status)
    return LaunchAttempt(campaign.name, status, status, [])


@task(
    name="Wait for upload jobs",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def wait_for_upload_jobs(
    credentials: ColdSendCredentials, campaign_id: str, job_ids: list[str], timeout_seconds: float
) -> list[str]:
    """Wait until each job is terminal; return a line per job that failed or timed out.

    A failed job is reported, not raised (the sync that started it already failed loudly and
    its re-run uploads the missing rows); API errors such as a missing scope are raised.
    """
    failed: list[str] = []
    with scopes_checked("launch"), budgeted_client(credentials, len(job_ids)) as client:
        for job_id in job_ids:
            try:
                wait_for_upload_job(client, campaign_id, job_id, timeout=timeout_seconds)
            except (UploadJobFailed, UploadJobTimedOut) as exc:
                failed.append(f"{job_id}: {exc}")
    return failed


@task(
    name="Launch campaign if ready",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def try_launch(
    credentials: ColdSendCredentials,
    campaign_id: str,
    *,
    read_first: bool = True,
    settings: dict[str, Any] | None = None,
) -> LaunchAttempt:
    """Ask a DRAFT campaign to launch; anything else is reported as found.

    Args:
        read_first: Read the status first (skip only right after it was read).
        settings: Inboxes, variants or sequences to set in the launch request itself.
    """
    with scopes_checked("launch"), budgeted_client(credentials, 2 if read_first else 1) as client:
        if read_first:
            campaign = client.get_campaign(campaign_id)
            if campaign.status != CampaignStatus.DRAFT:
                return LaunchAttempt(campaign.name, str(campaign.status), str(campaign.status), [])
        try:
            answer = client.launch_campaign(campaign_id, **(settings or {}))
        except BadRequestError:
            # Another run (the pipeline's launch and launch-on-sync, say) launched it between
            # our read and our request: report what it is now instead of failing.
            campaign = client.get_campaign(campaign_id)
            if campaign.status == CampaignStatus.DRAFT:
                raise
            return LaunchAttempt(campaign.name, str(campaign.status), str(campaign.status), [])
        return LaunchAttempt(
            answer.name, "DRAFT", str(answer.status), list(answer.missing_requirements or [])
        )


@dataclass(frozen=True, slots=True)
class LaunchAttempt:
    """What one look at (or launch request for) a campaign found."""

    name: str
    status_before: str
    status: str
    missing: list[str]


_WHAT_TO_DO = {
    "leads": "upload at least one lead (run the sync)",
    "inboxes": "attach at least one sender inbox (inbox_ids)",
    "variants": "add at least one email variant",
}
_DONE = (CampaignStatus.ACTIVE, CampaignStatus.COMPLETED)


@flow(name="launch-campaign-when-ready", flow_run_name=launch_run_name)
def launch_campaign_when_ready(
    campaign_id: str,
    coldsend: str | None = None,
    job_ids: list[str] | None = None,
    wait_for_requirements_seconds: float = 0.0,
    check_interval_seconds: float = 30.0,
    upload_timeout_seconds: float = 900.0,
    current_status: str | None = None,
    launch_settings: dict[str, Any] | None = None,
) -> LaunchReport:
    """Wait for the campaign's upload jobs, then launch it, or fail naming what is missing.

    Launching an ACTIVE (or COMPLETED) campaign is a no-op success that costs one request. A
    PAUSED campaign is not resumed: someone paused it on purpose.

    Args:
        campaign_id: The campaign to launch.
        coldsend: A ColdSend Credentials block name.
        job_ids: Upload jobs to wait for first (the sync's event carries them).
        wait_for_requirements_seconds: Keep checking readiness this long before failing.
        check_interval_seconds: Pause between readiness checks.
        upload_timeout_seconds: Deadline for each upload job.
        current_status: The status the caller read moments ago: a DRAFT campaign (with no
            jobs to wait for) is asked to launch at once, without reading it again.
        launch_settings: Inboxes, variants or sequences to set in the launch request itself
            (the pipeline's ensure step leaves them for it: one request instead of two).

    Returns:
        A `LaunchReport`; ``launched`` is True only when this run launched the campaign.

    Raises:
        CampaignNotLaunchable: Requirements still missing at the deadline (named: leads,
            inboxes, variants), or a paused or failed campaign.
        MissingScopes: The key lacks campaigns:read, campaigns:update or leads:read.

    Example:
        ```python
        from flows.campaigns import launch_campaign_when_ready

        report = launch_campaign_when_ready(campaign_id="...", job_ids=sync_report.job_ids)
        print(report.status)  # ACTIVE
        ```
    """
    logger = get_run_logger()
    credentials = load_coldsend(coldsend)
    report = LaunchReport(campaign_id=campaign_id, waited_jobs=list(job_ids or []))
    # Right after a DRAFT campaign was read (by the caller or here), launch at once; re-read
    # before later tries, and after waiting for jobs.
    read_first = bool(job_ids)
    if current_status == CampaignStatus.DRAFT and not job_ids:
        attempt = LaunchAttempt("", current_status, current_status, [])
    else:
        attempt = read_campaign(credentials, campaign_id, check_update_scope=bool(job_ids))
    report.checks = 1
    if launch_settings and attempt.status != CampaignStatus.DRAFT:
        logger.warning(
            "Not applying %s: the campaign is %s, not DRAFT",
            ", ".join(sorted(launch_settings)),
            attempt.status,
        )
    if attempt.status == CampaignStatus.DRAFT:
        if job_ids:
            failed = wait_for_upload_jobs(
                credentials, campaign_id, list(job_ids), upload_timeout_seconds
            )
            for line in failed:
                logger.warning("Upload job did not complete: %s", line)
        deadline = time.monotonic() + max(0.0, wait_for_requirements_seconds)
        settings = launch_settings
        while True:
            attempt = try_launch(credentials, campaign_id, read_first=read_first, settings=settings)
            read_first, settings = True, None
            if attempt.status in _DONE or not attempt.missing:
                break
            if time.monotonic() >= deadline:
                break
            logger.info("Not ready yet (missing %s); checking again", ", ".join(attempt.missing))
            time.sleep(min(check_interval_seconds, max(0.0, deadline - time.monotonic())))
            report.checks += 1
    name, status, missing = attempt.name, attempt.status, attempt.missing
    report.campaign_name, report.status = name, status
    if status == CampaignStatus.PAUSED:
        raise CampaignNotLaunchable(
            f"Campaign {name!r} is PAUSED; it was paused on purpose, so it is not resumed "
            "automatically. Activate it in ColdSend (or with the client) to resume sending."
        )
    if status == CampaignStatus.FAILED:
        raise CampaignNotLaunchable(f"Campaign {name!r} is FAILED and cannot be launched.")
    if missing:
        raise CampaignNotLaunchable(
            f"Campaign {name!r} cannot launch: missing "
            + "; ".join(f"{m} ({_WHAT_TO_DO.get(m, m)})" for m in missing)
        )
    if status not in _DONE:
        raise CampaignNotLaunchable(f"Campaign {name!r} is {status} after the launch request.")

    report.launched = attempt.status_before == CampaignStatus.DRAFT and status in _DONE
    _publish_launch_summary(report, name or campaign_label(campaign_id, None))
    if report.launched:
        emit_campaign_event(CAMPAIGN_LAUNCHED, campaign_id, name=name, payload={"status": status})
    logger.info("Campaign %r is %s", name, status)
    return report


def _publish_launch_summary(report: LaunchReport, name: str) -> None:
    """The launch's summary: what happened in one sentence and one row that agrees with it."""
    if name and report.campaign_id:
        remember_campaign(report.campaign_id, name=name)
        label_run("launch " + name, run_tags(campaign=name))
    if report.launched:
        outcome = f"Launched {name}: it is {report.status} and sending."
        what = "launched by this run"
    elif report.status == CampaignStatus.COMPLETED:
        outcome = f"Nothing to launch: {name} has finished sending (COMPLETED)."
        what = "already finished (launched earlier)"
    else:
        outcome = f"Nothing to launch: {name} was already {report.status} (launched earlier)."
        what = "already running (launched earlier)"
    waited = f"{len(report.waited_jobs)}" if report.waited_jobs else "none"
    publish_summary(
        key=artifact_key("launch", name, "summary"),
        title=f"Launch: {name}",
        body=markdown_table(
            ("campaign", "status now", "this run", "upload jobs waited for", "readiness checks"),
            [(name, report.status, what, waited, report.checks)],
        ),
        outcome=outcome,
    )
