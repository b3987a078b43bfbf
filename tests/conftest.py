"""Test-wide settings: Prefect runs offline against a throwaway home; sandbox fixtures."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Prefect: no telemetry (there is no network), a private home.
_HOME = tempfile.mkdtemp(prefix="coldsend-tests-prefect-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("COLDSEND_REPORTS_DIR", os.path.join(_HOME, "reports"))
for _name in ("COLDSEND_API_KEY", "COLDSEND_BASE_URL"):
    os.environ.pop(_name, None)

# One server of each sandbox for the whole session, and the `stack` fixture (sandboxes plus
# saved blocks on a Prefect test server) for flow-level tests.
pytest_plugins = [
    "sandbox.coldsend.fixtures",
    "sandbox.hubspot.fixtures",
    "sandbox.salesforce.fixtures",
    "sandbox.sheets.fixtures",
    "tests._stack",
]
