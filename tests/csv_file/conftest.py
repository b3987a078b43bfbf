"""Fixtures for the CSV connector tests: files written byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_bytes(tmp_path: Path) -> Callable[[bytes], Path]:
    """Write raw bytes to a fresh CSV file and return its path."""

    def _write(data: bytes, name: str = "leads.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write
