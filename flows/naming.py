"""What users see a run as in the Prefect UI: run names, tags, artifact keys and titles.

A RevOps user scanning the runs list or the artifacts page must tell "the Salesforce sync into
Q4 outbound" from "the sheet sync into Q4 outbound" without opening anything. So every name
says what runs (the lead store and the campaign, by name) and every artifact key is one per
store and campaign: two stores syncing into one campaign never overwrite each other's
artifacts.

Campaign names come from ColdSend, and the flows learn them only once they read the
campaign. Asking ColdSend earlier would cost a request per run, so each flow remembers the
name it read in a Prefect Variable (`remember_campaign`); the next run's name is right
from its first second, and a run that learns a new name renames itself (`label_run`). Both
cost Prefect API calls only, never a ColdSend request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, cast

from prefect import runtime
from prefect.variables import Variable

__all__ = [
    "artifact_key",
    "ascii_fold",
    "campaign_label",
    "known_campaign_name",
    "known_lead_stores",
    "label_run",
    "remember_campaign",
    "run_tags",
    "slugify",
    "store_label",
    "sync_title",
]

_log = logging.getLogger(__name__)

# Prefect's artifact keys: lowercase letters, digits and dashes.
KEY_MAX = 100
TAG_MAX = 100
_VARIABLE_PREFIX = "coldsend-campaign-"


# Letters Unicode does not decompose into a base letter plus accents.
_FOLD = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ß": "ss",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
        "\u0131": "i",
    }
)


def ascii_fold(text: str) -> str:
    """`text` in ASCII letters, as a company's mail system spells a name: "Chloé Müller" ->
    "Chloe Muller", "Søren Łukasz" -> "Soren Lukasz"; what has no ASCII form is dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def slugify(text: str, *, limit: int = KEY_MAX) -> str:
    """Lowercase letters, digits and single dashes; a long slug keeps a short hash of the rest.

    ``"Q4 outbound: EMEA"`` -> ``"q4-outbound-emea"``. Accents are dropped to their base
    letter where Unicode says so (``"Müller"`` -> ``"muller"``, see `ascii_fold`). Two texts that differ only
    beyond `limit` still get different slugs.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_fold(text).lower()).strip("-")
    if len(slug) <= limit:
        return slug
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return slug[: limit - 9].rstrip("-") + "-" + digest


def store_label(lead_store: str) -> str:
    """The lead store as users name it: ``"salesforce-leads/acme"``."""
    return lead_store.strip()


def store_type(lead_store: str) -> str:
    """The block type part of a lead store name: ``"salesforce-leads"`` (also of an unsaved
    store's ``"csv-file-leads:CSV file leads.csv"``)."""
    return re.split(r"[/:]", lead_store, maxsplit=1)[0].strip() or lead_store.strip()


def _store_parameter(value: object) -> str:
    """The `lead_store` parameter as runs name it: a saved store's name, or an unsaved
    store block's type and description."""
    if isinstance(value, str):
        return value
    if value is None:
        return "?"
    from flows._common import lead_store_label

    try:
        return lead_store_label(cast(Any, value))
    except Exception:
        return "?"


def campaign_label(campaign_id: str, campaign_name: str | None) -> str:
    """The campaign's name, or a short form of its id while the name is not known."""
    if campaign_name and campaign_name.strip():
        return campaign_name.strip()
    return f"campaign {campaign_id[:8]}" if campaign_id else "campaign"


def sync_title(lead_store: str, campaign_id: str, campaign_name: str | None) -> str:
    """``"salesforce-leads/acme -> Q4 outbound"``: the one way a sync is named everywhere."""
    return f"{store_label(lead_store)} -> {campaign_label(campaign_id, campaign_name)}"


def artifact_key(kind: str, *parts: str) -> str:
    """An artifact key naming what it is about, e.g.
    ``artifact_key("sync", "salesforce-leads/acme", "Q4 outbound", "summary")`` ->
    ``"sync-salesforce-leads-acme-q4-outbound-summary"``.

    The last part (what the artifact is: summary, rejects, ...) is always kept whole, so a
    long store or campaign name never makes the summary and the rejects share a key.
    """
    *middle, last = (kind, *parts) if parts else ("", kind)
    tail = slugify(last)
    head = slugify("-".join(p for p in middle if p), limit=KEY_MAX - len(tail) - 1)
    return f"{head}-{tail}" if head else tail


def _tag(name: str, value: str) -> str:
    text = " ".join(value.split())
    return f"{name}:{text}"[:TAG_MAX]


def run_tags(
    *, lead_store: str | None = None, campaign: str | None = None, sync: str | None = None
) -> list[str]:
    """Tags for the runs list's filter: ``store:salesforce-leads``, ``lead-store:...``,
    ``campaign:Q4 outbound``, ``sync:NAME``."""
    tags = ["coldsend"]
    if lead_store:
        tags += [_tag("store", store_type(lead_store)), _tag("lead-store", lead_store)]
    if campaign:
        tags.append(_tag("campaign", campaign))
    if sync:
        tags.append(_tag("sync", sync))
    return tags


def sync_name(lead_store: str, campaign_id: str, campaign_name: str | None) -> str:
    """The sync's name: the deployment's name when a deployment runs it (one per sync),
    else the store and campaign."""
    deployment = _deployment_name()
    return deployment or sync_title(lead_store, campaign_id, campaign_name)


def _deployment_name() -> str | None:
    try:
        name = runtime.deployment.name
    except Exception:  # no run context: not a deployment run
        return None
    return str(name) if name else None


# -- the campaign, remembered between runs (Prefect API only, never ColdSend) ----------------


def _variable_name(campaign_id: str) -> str:
    return (_VARIABLE_PREFIX + re.sub(r"[^a-z0-9_-]+", "-", campaign_id.lower()))[:255]


def _memo(campaign_id: str) -> dict[str, Any]:
    if not campaign_id:
        return {}
    try:
        value: object = cast(object, Variable.get(_variable_name(campaign_id), default=None))
    except Exception as exc:  # a name is a nicety: never fail a run over it
        _log.debug("Could not read what is remembered of the campaign: %s", exc)
        return {}
    return dict(value) if isinstance(value, dict) else {}


def known_campaign_name(campaign_id: str) -> str | None:
    """The campaign's name as an earlier run read it, or None (never raises)."""
    name = _memo(campaign_id).get("name")
    return str(name) if name else None


def known_lead_stores(campaign_id: str) -> list[str]:
    """The lead stores earlier runs synced into the campaign (never raises)."""
    stores = _memo(campaign_id).get("lead_stores")
    return [str(s) for s in stores] if isinstance(stores, list) else []


def remember_campaign(
    campaign_id: str, *, name: str | None = None, lead_store: str | None = None
) -> None:
    """Keep the campaign's name and the stores syncing into it, for later runs' names and
    reports; writes only when something changed, and never raises."""
    if not campaign_id:
        return
    memo = _memo(campaign_id)
    updated = dict(memo)
    if name:
        updated["name"] = name[:500]
    if lead_store:
        stores = [str(s) for s in memo.get("lead_stores") or []]
        if lead_store not in stores:
            updated["lead_stores"] = sorted([*stores, lead_store])[-50:]
    if updated == memo:
        return
    try:
        Variable.set(_variable_name(campaign_id), updated, overwrite=True)
    except Exception as exc:
        _log.debug("Could not remember the campaign: %s", exc)


# -- run names --------------------------------------------------------------------------------


def _parameters() -> dict[str, Any]:
    try:
        return dict(runtime.flow_run.parameters or {})
    except Exception:
        return {}


def sync_run_name() -> str:
    """`flow_run_name` of the sync: ``"sync salesforce-leads/acme -> Q4 outbound"``."""
    p = _parameters()
    campaign_id = str(p.get("campaign_id") or "")
    view = p.get("campaign_view")
    name = getattr(view, "name", None) or (view.get("name") if isinstance(view, dict) else None)
    return "sync " + sync_title(
        _store_parameter(p.get("lead_store")),
        campaign_id,
        name or known_campaign_name(campaign_id),
    )


def write_back_run_name() -> str:
    """`flow_run_name` of the write-back: ``"write-back Q4 outbound -> salesforce-leads/acme"``."""
    p = _parameters()
    campaign_id = str(p.get("campaign_id") or "")
    campaign = campaign_label(campaign_id, known_campaign_name(campaign_id))
    store = store_label(_store_parameter(p.get("lead_store")))
    return f"write-back {campaign} -> {store}"


def launch_run_name() -> str:
    """`flow_run_name` of the launch: ``"launch Q4 outbound"``."""
    campaign_id = str(_parameters().get("campaign_id") or "")
    return "launch " + campaign_label(campaign_id, known_campaign_name(campaign_id))


def _spec_name(spec: object) -> str:
    name = getattr(spec, "name", None)
    if name is None and isinstance(spec, dict):
        name = spec.get("name")
    return str(name or "?")


def ensure_run_name() -> str:
    """`flow_run_name` of ensure: ``"ensure Q4 outbound"``."""
    return "ensure " + _spec_name(_parameters().get("spec"))


def pipeline_run_name() -> str:
    """`flow_run_name` of the pipeline: ``"pipeline salesforce-leads/acme -> Q4 outbound"``."""
    p = _parameters()
    store = store_label(_store_parameter(p.get("lead_store")))
    return f"pipeline {store} -> {_spec_name(p.get('campaign'))}"


def label_run(name: str | None, tags: Iterable[str]) -> None:
    """Rename the current flow run (when `name` differs) and add `tags` to it: one Prefect API
    call, nothing outside a flow run; never fails the run."""
    try:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if ctx is None or ctx.flow_run is None:
            return
        run = ctx.flow_run
        merged = list(dict.fromkeys([*(run.tags or []), *tags]))
        new_name = name if name and name != run.name else None
        if new_name is None and merged == list(run.tags or []):
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.update_flow_run(run.id, name=new_name, tags=merged)
        if new_name:
            run.name = new_name
        run.tags = merged
    except Exception as exc:  # a label is a nicety: never fail a run over it
        _log.debug("Could not label the flow run: %s", exc)
