"""Run an ASGI app on a free loopback port in a background thread (fixtures, the demo, the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    """A server started by `start_server`; `url` is its root, e.g. ``http://127.0.0.1:54321``."""

    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, a response written as headers then body
    # waits ~40 ms for a delayed ACK on loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start_server(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> RunningServer:
    """Start `app` with uvicorn in a daemon thread and return once it accepts connections."""
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        limit_concurrency=None,
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only on the main thread; this one is not.
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])),
        name=f"sandbox-{bound_port}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox server on port {bound_port} did not start")
        time.sleep(0.01)
    return RunningServer(host=host, port=bound_port, _server=server, _thread=thread)


@contextlib.contextmanager
def serving(app: Any, **kwargs: Any) -> Iterator[RunningServer]:
    """Context manager form of `start_server`."""
    running = start_server(app, **kwargs)
    try:
        yield running
    finally:
        running.stop()


class _HideInjectedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedConnectionDrop)


class InjectedConnectionDrop(Exception):
    """Raised inside the app on purpose so uvicorn closes the connection without a response."""


logging.getLogger("uvicorn.error").addFilter(_HideInjectedDrops())
