"""The bad-input corpus: one table row per case, with what must come out of it.

A case is either an error (raised before any lead reaches ColdSend, naming the row or column)
or a stream of leads and per-row rejects. For a stream, `valid` is the exact set of emails
that must survive and `rejects` the exact rows (with a fragment of their reason) that must be
refused: nothing valid lost, nothing invalid let through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.leads import FieldMapping

Rejects = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Case:
    """One bad input and its expected outcome.

    Attributes:
        id: pytest id.
        data: The raw input (CSV bytes, sheet rows or Salesforce records, per corpus).
        valid: Emails (normalised) that must be yielded as leads, exactly.
        rejects: (row number, reason fragment) of every row that must be refused, exactly.
        error: (exception class name, message fragment) when the whole input must be refused.
        mapping: The field mapping to read with (None: the store's default).
        options: Extra keyword arguments for the source.
    """

    id: str
    data: Any
    valid: frozenset[str] = frozenset()
    rejects: Rejects = ()
    error: tuple[str, str] | None = None
    mapping: FieldMapping | None = None
    options: dict[str, Any] = field(default_factory=dict)


def emails(*values: str) -> frozenset[str]:
    return frozenset(values)
