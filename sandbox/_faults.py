"""Fault injection shared by every emulator: latency, 5xx answers and dropped connections.

Configured at run time through each emulator's ``/_sandbox/faults`` endpoint; requests under
``/_sandbox/`` themselves are never faulted.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import BaseModel, Field

from sandbox._server import InjectedConnectionDrop

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultConfig(BaseModel):
    """What to inject. Rates are probabilities per request, drawn from a seeded generator."""

    latency_ms: float = Field(default=0.0, ge=0, le=60_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503])
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    drop_after_processing_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of drops that happen after the request was processed (response lost).",
    )
    seed: int = 0
    path_prefix: str = Field(default="", description="Only requests under this path are faulted.")
    methods: list[str] = Field(
        default_factory=list,
        description="Only requests with one of these methods are faulted; empty means all.",
    )


class FaultInjector:
    """ASGI middleware applying a `FaultConfig`, thread-safe and reconfigurable at run time."""

    def __init__(self, app: ASGIApp, *, control_prefix: str = "/_sandbox") -> None:
        self.app = app
        self.control_prefix = control_prefix
        self._lock = threading.Lock()
        self.configure(FaultConfig())
        self.injected: dict[str, int] = {"errors": 0, "drops_before": 0, "drops_after": 0}

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def _draw(self) -> tuple[float, float, float, int]:
        with self._lock:
            return (
                self._rng.random(),
                self._rng.random(),
                self._rng.random(),
                self._rng.randrange(1 << 30),
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        cfg = self.config
        if (
            scope["type"] != "http"
            or path.startswith(self.control_prefix)
            or not path.startswith(cfg.path_prefix)
            or (cfg.methods and scope.get("method", "") not in {m.upper() for m in cfg.methods})
        ):
            await self.app(scope, receive, send)
            return
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        err_draw, drop_draw, when_draw, pick = self._draw()
        if drop_draw < cfg.drop_rate:
            if when_draw >= cfg.drop_after_processing_share:
                self.injected["drops_before"] += 1
            else:
                self.injected["drops_after"] += 1
                await self.app(scope, receive, _swallow)
            # Promise a body and die: raised before any response, uvicorn would answer a tidy
            # 500 instead of the broken connection a drop should be.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"100000")],
                }
            )
            raise InjectedConnectionDrop(path)
        if err_draw < cfg.error_rate and cfg.error_statuses:
            self.injected["errors"] += 1
            status = cfg.error_statuses[pick % len(cfg.error_statuses)]
            body = json.dumps({"detail": f"Injected fault: HTTP {status}"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def _swallow(message: Message) -> None:
    return None
