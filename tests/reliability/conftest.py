"""Reliability suites: print the figures they measured (cells, outcomes, runs, kills) at the end."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.reliability._world import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for row in FIGURES:
        terminalreporter.write_line(json.dumps(row, sort_keys=True))
    path = os.environ.get("COLDSEND_RELIABILITY_FIGURES")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(FIGURES, fh, indent=2, sort_keys=True)
