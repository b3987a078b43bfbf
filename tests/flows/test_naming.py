"""Names users see in the Prefect UI: artifact keys, run names, outcome sentences, file links."""

from __future__ import annotations

import re

import pytest
from prefect.filesystems import LocalFileSystem, RemoteFileSystem

from blocks import ReportStorage
from flows.naming import artifact_key, campaign_label, run_tags, slugify, sync_title
from flows.reports import RejectsFile, sync_outcome

KEY = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Q4 outbound: EMEA fintech", "q4-outbound-emea-fintech"),
        ("salesforce-leads/acme", "salesforce-leads-acme"),
        ("Müller & Søn", "muller-son"),
        ("  --  ", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_two_stores_into_one_campaign_get_their_own_keys() -> None:
    salesforce = artifact_key("sync", "salesforce-leads/acme", "Q4 outbound", "summary")
    sheet = artifact_key("sync", "google-sheet-leads/events", "Q4 outbound", "summary")
    assert salesforce == "sync-salesforce-leads-acme-q4-outbound-summary"
    assert sheet != salesforce and KEY.match(sheet)


def test_long_names_keep_the_artifact_kind_and_stay_distinct() -> None:
    long = "A very long campaign name " * 10
    summary = artifact_key("sync", "salesforce-leads/acme", long + "one", "summary")
    rejects = artifact_key("sync", "salesforce-leads/acme", long + "one", "rejects")
    other = artifact_key("sync", "salesforce-leads/acme", long + "two", "summary")
    assert len(summary) <= 100 and summary.endswith("-summary") and rejects.endswith("-rejects")
    assert summary != other and KEY.match(summary) and KEY.match(other)


def test_titles_and_tags_name_the_store_and_campaign() -> None:
    assert sync_title("salesforce-leads/acme", "4290f1b4-aaaa", "Q4 outbound") == (
        "salesforce-leads/acme -> Q4 outbound"
    )
    # Before the name is known (no extra ColdSend request is spent on it): a short id.
    assert campaign_label("4290f1b4-aaaa-bbbb", None) == "campaign 4290f1b4"
    assert run_tags(lead_store="salesforce-leads/acme", campaign="Q4 outbound", sync="acme") == [
        "coldsend",
        "store:salesforce-leads",
        "lead-store:salesforce-leads/acme",
        "campaign:Q4 outbound",
        "sync:acme",
    ]


def test_the_outcome_sentence_leads_with_what_happened() -> None:
    counts = {"read": 1000, "uploaded": 875, "duplicates": 100, "rejected": 25, "suppressed": 0}
    assert sync_outcome(counts, source="salesforce-leads/acme", campaign="Q4 outbound") == (
        "Uploaded 875 new lead(s) from salesforce-leads/acme to Q4 outbound "
        "(1,000 read: 100 already in campaign, 25 rejected)."
    )
    nothing = {"read": 10, "uploaded": 0, "duplicates": 10}
    assert sync_outcome(nothing, source="s", campaign="c").startswith("Nothing new to upload")
    short = {"read": 10, "uploaded": 5, "unaccounted": 5}
    assert sync_outcome(short, source="s", campaign="c").startswith("Incomplete: 5 of 10 rows")
    dry = sync_outcome({"read": 3, "uploaded": 3}, source="s", campaign="c", dry_run=True)
    assert dry.startswith("Dry run: 3 new lead(s)") and "nothing was changed" in dry


def test_report_storage_links_open_in_a_browser(tmp_path: object) -> None:
    served = ReportStorage(
        storage=LocalFileSystem(basepath=str(tmp_path)), public_url="https://files.acme.com/cs/"
    )
    assert served.link("sync a b.csv") == "https://files.acme.com/cs/sync%20a%20b.csv"
    s3 = ReportStorage(storage=RemoteFileSystem(basepath="s3://acme-revops/coldsend"))
    assert s3.link("x.csv") == (
        "https://s3.console.aws.amazon.com/s3/object/acme-revops?prefix=coldsend/x.csv"
    )
    gcs = ReportStorage(storage=RemoteFileSystem(basepath="gs://acme/reports"))
    assert gcs.link("x.csv") == (
        "https://console.cloud.google.com/storage/browser/_details/acme/reports/x.csv"
    )
    # A local directory nobody serves has no address a browser opens: no link, never file://.
    local = ReportStorage(storage=LocalFileSystem(basepath=str(tmp_path)))
    assert local.link("x.csv") is None


def test_a_file_without_a_link_is_named_in_words() -> None:
    here = RejectsFile(count=3, shown=3, location="/r/x.csv", link=None, on_this_machine=True)
    assert "`/r/x.csv` on " in here.where() and "file://" not in here.where()
    linked = RejectsFile(
        count=3, shown=3, location="s3://a/x.csv", link="https://x/y", on_this_machine=False
    )
    assert "[download the CSV](https://x/y)" in linked.where()
