"""What a RevOps user sees: the demo run against a real Prefect server, read in headless Chromium.

One test, because every check reads the state the demo left: `prefect server start` with its
UI (its own home, loopback port), a ColdSend Report Storage block whose files a small web
server serves, then `prefect-coldsend demo` pointed at that server. Chromium (Debian's, driven
by the `playwright` package; installed with apt-get when missing) then opens the pages a user
would and the test asserts on what they render:

* the runs list: runs named after their store and campaign, tagged;
* the artifacts list: keys naming the sync; the summary leading with its outcome;
* the rejects table: the planted bad rows with their reasons, and the CSV link opening the
  full file in the browser (an http address, never file://);
* the lead store block's page showing its saved credentials block, and its edit form saving.

Screenshots go to a temporary folder (printed; $COLDSEND_UI_SCREENSHOTS picks another), never
into the repository. Every wait is on a selector, a network-idle page or an API answer, with
generous deadlines for a busy machine; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._prefect import REPO, E2EFailure, PrefectProcesses, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CAMPAIGN = "prefect-coldsend demo: Q4 outbound"
SALESFORCE, SHEET = "salesforce-leads/demo", "google-sheet-leads/demo"
# The page deadline: a cold SPA on a 2-core machine shared with other test runs.
PAGE_MS = 90_000
DEMO_TIMEOUT = 420.0


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get (as root) when missing."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("chromium is missing: install it (apt-get install -y chromium) or run as root")
    for attempt in range(30):
        install = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        if install.returncode == 0 and shutil.which("chromium"):
            return str(shutil.which("chromium"))
        output = install.stdout + install.stderr
        if "Unable to locate package" in output and attempt == 0:
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=600, check=False)
        elif "lock" in output:
            # Another install holds dpkg's lock: wait for it to end, not for a fixed time.
            subprocess.run(
                ["flock", "-w", "120", "/var/lib/dpkg/lock-frontend", "true"],
                capture_output=True,
                timeout=180,
                check=False,
            )
        else:
            pytest.fail(f"apt-get install chromium failed:\n{output[-2000:]}")
    pytest.fail("apt-get install chromium: dpkg stayed locked")


@pytest.fixture(scope="module")
def screenshots() -> Path:
    configured = os.environ.get("COLDSEND_UI_SCREENSHOTS")
    folder = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="coldsend-ui-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A web server over the report storage's directory, as a team's file server would be."""
    root = tmp_path_factory.mktemp("report-files")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectProcesses]:
    processes = PrefectProcesses(tmp_path_factory.mktemp("ui"))
    processes.env.update({"PREFECT_UI_ENABLED": "true", "PREFECT_UI_API_URL": processes.api_url})
    try:
        processes.start_server(timeout=180)
        yield processes
    finally:
        processes.close()


def run_demo(prefect: PrefectProcesses, state_dir: Path) -> str:
    """`prefect-coldsend demo` against the server, as a user with PREFECT_API_URL set runs it."""
    command = [
        sys.executable,
        "-c",
        "from app.cli import main; raise SystemExit(main())",
        "demo",
        "--state-dir",
        str(state_dir),
        "--leads",
        "120",
        "--sheet-rows",
        "40",
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=prefect.env,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise E2EFailure(
            f"the demo took over {DEMO_TIMEOUT:.0f} s\n{prefect.diagnostics()}"
        ) from exc
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:] + prefect.diagnostics()
    return done.stdout


def by_name(prefect: PrefectProcesses, name: str) -> dict[str, Any]:
    runs = prefect.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    assert len(runs) == 1, f"expected one flow run named {name!r}, found {len(runs)}"
    run: dict[str, Any] = runs[0]
    return run


def artifact(prefect: PrefectProcesses, key: str) -> dict[str, Any]:
    found = prefect.post("/artifacts/filter", {"artifacts": {"key": {"any_": [key]}}})
    assert found, f"no artifact with key {key!r}"
    latest: dict[str, Any] = found[0]
    return latest


def block_document(prefect: PrefectProcesses, slug: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = prefect.get(f"/block_types/slug/{slug}/block_documents/name/{name}")
    return document


def test_a_revops_user_reads_every_run_in_the_prefect_ui(
    prefect: PrefectProcesses,
    files_server: tuple[Path, str],
    screenshots: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    from flows.naming import artifact_key

    chromium = chromium_path()
    files_root, files_url = files_server
    with prefect.client_settings():
        from prefect.filesystems import LocalFileSystem

        from blocks import ReportStorage

        storage = LocalFileSystem(basepath=str(files_root))
        storage.save("demo-reports", overwrite=True)
        ReportStorage(storage=storage, public_url=files_url).save("default", overwrite=True)

    output = run_demo(prefect, tmp_path / "demo")
    ui = prefect.api_url.removesuffix("/api")
    # The closing hint points at this server, not at port 4200 or the demo's own home.
    assert f"{ui}/runs" in output and "4200" not in output, output

    sync_sf = by_name(prefect, f"sync {SALESFORCE} -> {CAMPAIGN}")
    sync_sheet = by_name(prefect, f"sync {SHEET} -> {CAMPAIGN}")
    assert {"store:google-sheet-leads", f"campaign:{CAMPAIGN}"} <= set(sync_sheet["tags"])
    summary = artifact(prefect, artifact_key("sync", SHEET, CAMPAIGN, "summary"))
    rejects = artifact(prefect, artifact_key("sync", SHEET, CAMPAIGN, "rejects"))
    csv_link = artifact(prefect, artifact_key("sync", SHEET, CAMPAIGN, "rejects-csv"))
    store = block_document(prefect, "salesforce-leads", "demo")
    credentials = store["block_document_references"]["credentials"]["block_document"]
    assert credentials["name"] == "demo"

    shots: list[str] = []

    def look(page: Page, path: str, name: str, *, wait_for: str) -> None:
        """Open `path`, wait until `wait_for` is visible and the network is idle, screenshot."""
        page.goto(ui + path, wait_until="domcontentloaded")
        expect(page.get_by_text(wait_for, exact=False).first).to_be_visible(timeout=PAGE_MS)
        page.wait_for_load_state("networkidle", timeout=PAGE_MS)
        file = screenshots / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(file), full_page=True)
        shots.append(file.name)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            context.set_default_timeout(PAGE_MS)
            page = context.new_page()

            # The runs list: every run says what it does.
            look(page, "/runs", "runs", wait_for=sync_sf["name"])
            for name in (sync_sheet["name"], f"launch {CAMPAIGN}"):
                expect(page.get_by_text(name).first).to_be_visible()
            expect(page.get_by_text(f"write-back {CAMPAIGN} -> {SALESFORCE}").first).to_be_visible()

            # A sync run's page: its name and tags.
            look(
                page, f"/runs/flow-run/{sync_sheet['id']}", "sync-run", wait_for=sync_sheet["name"]
            )
            expect(page.get_by_text("store:google-sheet-leads").first).to_be_visible()

            # The artifacts list: keys and descriptions name the sync, not a UUID.
            look(page, "/artifacts", "artifacts", wait_for=summary["key"])
            expect(page.get_by_text(rejects["key"], exact=True).first).to_be_visible()

            # The summary leads with the outcome in one sentence.
            look(page, f"/artifacts/artifact/{summary['id']}", "sync-summary", wait_for="Uploaded ")
            expect(page.get_by_text(f"Sync: {SHEET} -> {CAMPAIGN}").first).to_be_visible()

            # The rejects table: the planted bad rows, reasons that do not repeat the email.
            look(page, f"/artifacts/artifact/{rejects['id']}", "rejects", wait_for="not-an-email")
            table = page.locator("table").first
            for text in (
                "someone@",
                "missing email",
                "non-ASCII characters before '@' are not supported",
                "duplicate email: already read at row",
            ):
                expect(table.get_by_text(text).first).to_be_visible()
            rows = json.loads(rejects["data"])
            assert len(rows) == 5, rows  # only the planted rows: the demo's people are valid
            assert all(r["email"] not in r["reason"] for r in rows if r["email"])

            # The full file: linked at an address the browser opens, and it opens.
            link = page.get_by_role("link", name="download the CSV").first
            href = link.get_attribute("href") or ""
            assert href.startswith(files_url + "/") and href.endswith(".csv"), href
            look(
                page,
                f"/artifacts/artifact/{csv_link['id']}",
                "rejects-link",
                wait_for="rows (CSV)",
            )
            with page.expect_download(timeout=PAGE_MS) as download_info:
                page.get_by_role("link", name=re.compile(r"rows \(CSV\)$")).first.click()
            downloaded = Path(download_info.value.path())
            text = downloaded.read_text(encoding="utf-8")
            assert text.startswith("row,record_id,email,reason,stage") and "not-an-email" in text
            assert "file://" not in json.dumps([rejects, csv_link])

            # The lead store's block page shows its saved credentials block, by name.
            look(
                page,
                f"/blocks/block/{store['id']}",
                "salesforce-leads-block",
                wait_for="Salesforce Leads",
            )
            credentials_link = page.locator(f"a[href*='{credentials['id']}']").first
            expect(credentials_link).to_be_visible()
            expect(credentials_link).to_have_text("demo")
            assert "SalesforceCredentials None" not in page.inner_text("body")

            # Its edit form saves: a filter changed in the UI reaches the saved block.
            look(
                page,
                f"/blocks/block/{store['id']}/edit",
                "salesforce-leads-edit",
                wait_for="Object Name",
            )
            page.get_by_role("button", name="Save").click()
            page.wait_for_url(f"**/blocks/block/{store['id']}", timeout=PAGE_MS)
            expect(page.get_by_text("is required")).to_have_count(0)
            saved = block_document(prefect, "salesforce-leads", "demo")
            assert (
                saved["block_document_references"]["credentials"]["block_document"]["id"]
                == (credentials["id"])
            )
        finally:
            browser.close()
    print(f"{len(shots)} screenshots in {screenshots}: {', '.join(shots)}")
