"""A real Prefect server and worker as child processes, driven the way a user drives them.

`PrefectProcesses` starts `prefect server start` on a free loopback port with its own
PREFECT_HOME (SQLite, or the database URL given to `start_server`), runs `prefect ...` commands
against it, starts process workers (one or several), and reads the server's REST API. Every child runs in its own process group; `close()` ends the
groups and any stray descendants, so nothing outlives the test even when it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prefect.settings import PREFECT_API_URL, temporary_settings

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_UUID = re.compile(r"UUID:\s*([0-9a-f-]{36})")

T = TypeVar("T")


class E2EFailure(AssertionError):
    """A step of the end-to-end run did not happen in time or went wrong."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_of(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


class Child:
    """One child process in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL it and every descendant still there."""
        pid = self.proc.pid
        stragglers = _children_of(pid)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        # Descendants that started their own session are not in the group.
        for child in stragglers + _children_of(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._out.close()

    def kill(self) -> list[int]:
        """SIGKILL the process and every descendant at once, as if its machine died.

        Returns the descendants' pids (the flow runs it had started, for a worker).
        """
        pid = self.proc.pid
        victims = _children_of(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for child in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        return victims


class PrefectProcesses:
    """A Prefect server, the CLI and a worker, all in child processes against one temp home."""

    def __init__(self, workdir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.home = workdir / "prefect-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COLDSEND_"))}
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false",
                "PREFECT_CLI_PROMPT": "false",
                "PREFECT_LOGGING_TO_API_ENABLED": "true",
                # Pick up runs promptly; the default polls every 10 s.
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "COLDSEND_REPORTS_DIR": str(workdir / "reports"),
                "PWD": str(REPO),
                **(extra_env or {}),
            }
        )
        self.env = env
        self.children: dict[str, Child] = {}
        self.api = httpx.Client(base_url=self.api_url, timeout=30.0, trust_env=False)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> PrefectProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # Workers first, so they do not start runs against a server going away.
        workers = [n for n in self.children if n.startswith("worker")]
        for name in (*workers, *[n for n in self.children if n not in workers]):
            self.children[name].stop()
        self.api.close()

    def start_server(self, timeout: float = 120.0, env: dict[str, str] | None = None) -> None:
        """`prefect server start` on loopback; returns once /api/health answers.

        Args:
            env: Settings for the server alone (e.g. PREFECT_API_DATABASE_CONNECTION_URL).
        """
        self.children["server"] = Child(
            "server",
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**self.env, **(env or {})},
            log=self.workdir / "server.log",
        )
        self.wait_for(
            "the Prefect server to answer /api/health",
            self._healthy,
            timeout=timeout,
            interval=0.25,
        )

    def _healthy(self) -> bool | None:
        if not self.children["server"].alive():
            raise E2EFailure(f"the Prefect server exited:\n{self.diagnostics()}")
        try:
            return self.api.get("/health", timeout=2).status_code == 200 or None
        except httpx.TransportError:
            return None

    def start_worker(
        self,
        pool: str,
        name: str = "worker",
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> Child:
        """`prefect worker start` in a child process; several may run (names start "worker")."""
        if not name.startswith("worker"):
            raise ValueError(f"worker child names start with 'worker', got {name!r}")
        args = [PREFECT, "worker", "start", "--pool", pool, *(extra_args or [])]
        if name != "worker":
            args += ["--name", name]
        child = Child(name, args, env={**self.env, **(env or {})}, log=self.workdir / f"{name}.log")
        self.children[name] = child
        return child

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> str:
        """Run `prefect ARGS` from the repository root; its output, or a failure showing it."""
        try:
            done = subprocess.run(
                [PREFECT, *args],
                cwd=REPO,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise E2EFailure(
                f"`prefect {' '.join(args)}` took over {timeout:.0f} s\n{self.diagnostics()}"
            ) from exc
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise E2EFailure(
                f"`prefect {' '.join(args)}` exited {done.returncode}:\n{output[-4000:]}\n"
                + self.diagnostics()
            )
        return output

    @contextlib.contextmanager
    def client_settings(self) -> Iterator[None]:
        """Point this process's Prefect client (Block.save/load) at the server."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            yield

    # -- waiting and diagnostics -------------------------------------------------------------

    def diagnostics(self, lines: int = 40) -> str:
        parts = []
        for name, child in self.children.items():
            state = "running" if child.alive() else f"exited {child.proc.returncode}"
            parts.append(f"--- {name} ({state}), last {lines} lines ---\n{child.tail(lines)}")
        return "\n".join(parts)

    def wait_for(
        self,
        what: str,
        probe: Callable[[], T | None],
        *,
        timeout: float,
        interval: float = 1.0,
        detail: Callable[[], str] | None = None,
    ) -> T:
        """Call `probe` until it returns something truthy, and return that; or fail clearly."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = probe()
            except httpx.TimeoutException:
                # A server busy with the runs themselves (SQLite, a loaded machine) may answer
                # one probe late; the wait's own deadline decides, not one request's.
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                extra = detail() if detail else ""
                raise E2EFailure(
                    f"timed out after {timeout:.0f} s waiting for {what}\n{extra}\n"
                    + self.diagnostics()
                )
            time.sleep(interval)

    # -- the REST API ------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        response = self.api.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = self.api.post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, flow_name: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/deployments/name/{flow_name}/{name}")
        return result

    def flow_runs(
        self, deployment_id: str | None = None, *, scheduled: bool | None = False
    ) -> list[dict[str, Any]]:
        """Runs that left the Scheduled state; with `scheduled` True those still in it, None all."""
        runs: dict[str, Any] = {}
        if scheduled is not None:
            runs["state"] = {"type": {"any_" if scheduled else "not_any_": ["SCHEDULED"]}}
        if deployment_id:
            runs["deployment_id"] = {"any_": [deployment_id]}
        body = {"flow_runs": runs, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        result: list[dict[str, Any]] = self.post("/flow_runs/filter", body)
        return result

    def scheduled_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        """Runs the server's scheduler queued for a deployment."""
        runs = self.flow_runs(deployment_id, scheduled=True)
        return [r for r in runs if r["auto_scheduled"]]

    def scheduler_hint(self) -> str:
        """Why the server's scheduler may be creating no runs, from its log."""
        log = self.children["server"].log.read_text(errors="replace")
        if "Can't evaluate bulk DML statement" in log:
            return (
                "The server's scheduler fails to insert runs: Prefect 3.8.8's scheduler "
                "breaks on SQLAlchemy 2.1 ('Can't evaluate bulk DML statement'); pin "
                "sqlalchemy>=2.0,<2.1."
            )
        return ""

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/flow_runs/{flow_run_id}")
        return result

    def run_logs(self, flow_run_id: str, limit: int = 40) -> str:
        logs = self.post(
            "/logs/filter",
            {
                "logs": {"flow_run_id": {"any_": [flow_run_id]}},
                "sort": "TIMESTAMP_DESC",
                "limit": limit,
            },
        )
        return "\n".join(f"{log['level']:>3} {log['message']}" for log in reversed(logs))

    def wait_for_run(self, flow_run_id: str, *, timeout: float) -> dict[str, Any]:
        """Wait until the run is terminal; fail with its state message and logs unless COMPLETED."""

        def terminal() -> dict[str, Any] | None:
            run = self.flow_run(flow_run_id)
            return run if run["state_type"] in TERMINAL else None

        def state() -> str:
            run = self.flow_run(flow_run_id)
            return f"flow run {run['name']} is {run['state_type']}: {run['state']}"

        run = self.wait_for(
            f"flow run {flow_run_id} to finish", terminal, timeout=timeout, detail=state
        )
        if run["state_type"] != "COMPLETED":
            message = (run.get("state") or {}).get("message")
            raise E2EFailure(
                f"flow run {run['name']} ({flow_run_id}) ended {run['state_type']}: {message}\n"
                f"--- its logs ---\n{self.run_logs(flow_run_id)}\n{self.diagnostics()}"
            )
        return run

    def post_event(self, event: str, resource_id: str, payload: dict[str, Any]) -> str:
        """POST one external event to the server's events API; returns its id."""
        event_id = str(uuid.uuid4())
        self.post(
            "/events",
            [
                {
                    "id": event_id,
                    "occurred": datetime.now(UTC).isoformat(),
                    "event": event,
                    "resource": {"prefect.resource.id": resource_id},
                    "payload": payload,
                }
            ],
        )
        return event_id

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events named `name` the server holds (most recent first)."""
        page = self.post(
            "/events/filter",
            {"filter": {"event": {"name": [name]}, "order": "DESC"}, "limit": 50},
        )
        events: list[dict[str, Any]] = page["events"]
        return events


def deployed_run_id(output: str) -> str:
    """The flow run id that `prefect deployment run` printed."""
    match = _UUID.search(output)
    if not match:
        raise E2EFailure(f"no flow run id in `prefect deployment run` output:\n{output}")
    return match.group(1)
