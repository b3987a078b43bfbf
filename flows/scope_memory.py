"""Scopes a ColdSend key was seen to have, shared by every flow run of the Prefect server.

A scope probe costs one request of the key's budget. `connectors.coldsend.scopes.ScopeMemory`
remembers what a process saw for ten minutes, but a process worker starts one process per
flow run, so each run of a deployment probed again what the run before it saw a minute ago
(the leads:read probe of every sync into an empty campaign: one request in four of a first
sync). `SharedScopeMemory` also keeps what it saw in one Prefect Variable per key
(``coldsend-scopes-<key fingerprint>``, seen-at times in epoch seconds), so a probe made by
any run spares the others for the same ten minutes. The fingerprint is a digest of the key
and its server, never the key.

The Variable is a saving, never a requirement: when the Prefect API cannot be read or
written the memory is the process's own, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from prefect.variables import Variable

from connectors.coldsend.scopes import REMEMBER_SCOPES_SECONDS, ScopeMemory

__all__ = ["SCOPE_MEMORY", "VARIABLE_PREFIX", "SharedScopeMemory", "scopes_variable_name"]

_log = logging.getLogger("prefect_coldsend.scopes")

VARIABLE_PREFIX = "coldsend-scopes-"
# A process reads the Variable again after this long when it still lacks a scope (another
# run may have probed it meanwhile); within it, a miss costs no Prefect API call.
REFRESH_SECONDS = 5.0
# Times up to this far ahead of this machine's clock are taken as "now".
CLOCK_SKEW = 60.0


def scopes_variable_name(fingerprint: str) -> str:
    """The Variable holding what was seen of the key with this fingerprint."""
    return f"{VARIABLE_PREFIX}{fingerprint}"[:255]


def _read_variable(name: str) -> object:
    return cast(object, Variable.get(name, default=None))


def _write_variable(name: str, value: dict[str, float]) -> None:
    Variable.set(name, cast(Any, value), overwrite=True)


class SharedScopeMemory(ScopeMemory):
    """A `ScopeMemory` that also reads and writes what it saw in a Prefect Variable per key.

    Args:
        seconds: How long a scope seen granted is trusted (a key's scopes can change).
        clock: Monotonic clock of this process.
        wall: Wall clock shared by processes (epoch seconds), for the Variable's times.
        read / write: Read and write one Variable (injectable for tests).
        refresh: Seconds before a miss reads the Variable again.
    """

    def __init__(
        self,
        seconds: float = REMEMBER_SCOPES_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        read: Callable[[str], object] = _read_variable,
        write: Callable[[str, dict[str, float]], None] = _write_variable,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        super().__init__(seconds=seconds, clock=clock)
        self.wall = wall
        self._read = read
        self._write = write
        self._refresh = refresh
        self._loaded: dict[str, float] = {}
        self._lock = threading.Lock()

    def known(self, fingerprint: str, scope: str) -> bool:
        if super().known(fingerprint, scope):
            return True
        with self._lock:
            loaded = self._loaded.get(fingerprint)
            if loaded is not None and self.clock() - loaded < self._refresh:
                return False
            self._loaded[fingerprint] = self.clock()
        now = self.wall()
        for seen_scope, seen_at in self._fresh(fingerprint, now).items():
            super().remember(fingerprint, seen_scope, age=now - seen_at)
        return super().known(fingerprint, scope)

    def remember(self, fingerprint: str, scope: str, *, age: float = 0.0) -> None:
        super().remember(fingerprint, scope, age=age)
        now = self.wall()
        seen = self._fresh(fingerprint, now)
        seen[scope] = now - max(age, 0.0)
        try:
            self._write(scopes_variable_name(fingerprint), seen)
        except Exception as exc:  # a saving, never a reason to fail a run
            _log.debug("Could not share the scopes seen: %s", exc)

    def clear(self) -> None:
        """Forget what this process saw (the Variable stays, as for a new process)."""
        super().clear()
        with self._lock:
            self._loaded.clear()

    def _fresh(self, fingerprint: str, now: float) -> dict[str, float]:
        """The Variable's scopes seen within `seconds` (none when it cannot be read)."""
        try:
            value = self._read(scopes_variable_name(fingerprint))
        except Exception as exc:
            _log.debug("Could not read the scopes seen by other runs: %s", exc)
            return {}
        if not isinstance(value, dict):
            return {}
        fresh: dict[str, float] = {}
        for scope, seen_at in value.items():
            if not isinstance(seen_at, int | float):
                continue
            # Seen "in the future": another machine's clock runs a little ahead.
            seen_at = min(float(seen_at), now) if seen_at - now < CLOCK_SKEW else None
            if seen_at is not None and now - seen_at < self.seconds:
                fresh[str(scope)] = seen_at
        return fresh


SCOPE_MEMORY = SharedScopeMemory()
