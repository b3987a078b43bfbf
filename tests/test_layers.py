"""The layer rules of design.md: connectors/ never imports Prefect, flows/ never speaks HTTP,
and the application layer (app/: CLI, demo, serve) sits above flows/, which never imports it
nor the sandboxes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("connectors", ("prefect", "blocks", "flows", "sandbox", "app")),
        ("sandbox", ("prefect", "blocks", "flows", "connectors", "app")),
        ("blocks", ("flows", "sandbox", "app")),
        ("flows", ("httpx", "requests", "urllib3", "http.client", "sandbox", "app")),
    ],
)
def test_layer_imports(package: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, name in _imports(package)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert not bad, "\n".join(bad)


def test_flows_package_exports_its_public_flows() -> None:
    # A fresh interpreter: the import order of a user's script, not the one pytest left behind.
    code = (
        "import flows\n"
        "from flows import sync_leads_to_campaign\n"
        "assert sync_leads_to_campaign.name == 'sync-leads-to-campaign'\n"
        "missing = [n for n in flows.__all__ if getattr(flows, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert sorted(flows.__all__) == flows.__all__\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
