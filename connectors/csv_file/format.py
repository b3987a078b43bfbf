"""Working out how a CSV file is written: encoding, delimiter, line ending; and atomic rewrites."""

from __future__ import annotations

import codecs
import contextlib
import csv
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "DELIMITERS",
    "CsvFormat",
    "CsvFormatError",
    "atomic_replace",
    "detect_encoding",
    "detect_format",
    "remove_stale_temp_files",
    "sniff_delimiter",
]

logger = logging.getLogger(__name__)

DELIMITERS = ",;\t|"
_SAMPLE_BYTES = 64 * 1024
_SCAN_CHUNK = 1 << 20


class CsvFormatError(ValueError):
    """The file is not readable CSV: binary data, undecodable text or broken quoting."""


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How a file is written.

    Attributes:
        encoding: Python codec name (``utf-8-sig`` when the file starts with a UTF-8 BOM).
        delimiter: One of ``, ; TAB |``.
        newline: ``"\\r\\n"`` or ``"\\n"``, as the file's first line ends.
        note: Why a fallback encoding was chosen, or "" when the text was clean UTF-8.
    """

    encoding: str
    delimiter: str
    newline: str
    note: str = ""


def _looks_binary(sample: bytes) -> int | None:
    """Offset of the first NUL byte, or of the sample when control bytes dominate; else None."""
    nul = sample.find(b"\x00")
    if nul >= 0:
        return nul
    if sample:
        controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
        if controls / len(sample) > 0.05:
            return 0
    return None


def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, note) for a file: BOM first, then strict UTF-8, then cp1252, then latin-1.

    The whole file is scanned in 1 MiB chunks (never held in memory) because one stray
    byte deep in a file decides whether it is UTF-8.

    Raises:
        CsvFormatError: the file looks binary (NUL or many control bytes).
    """
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig", ""
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", ""
        offset = _looks_binary(head)
        if offset is not None:
            raise CsvFormatError(
                f"{path.name} looks like a binary file, not CSV text (control bytes near byte "
                f"{offset}); save it as CSV (UTF-8) and try again"
            )
        for codec in ("utf-8", "cp1252"):
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(codec)()
            try:
                while chunk := fh.read(_SCAN_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                continue
            if codec == "utf-8":
                return codec, ""
            note = f"{path.name} is not valid UTF-8; read as Windows-1252 (cp1252)"
            logger.warning(note)
            return codec, note
    note = f"{path.name} is neither UTF-8 nor Windows-1252; read as Latin-1, check accented text"
    logger.warning(note)
    return "latin-1", note


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a text sample, restricted to ``, ; TAB |`` (comma when unsure)."""
    cut = sample.rfind("\n")
    if cut > 0:
        sample = sample[:cut]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on one-line or one-column samples: count on the header line.
    first = sample.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _detect_newline(path: Path, encoding: str) -> str:
    with path.open("r", encoding=encoding, newline="", errors="replace") as fh:
        line = fh.readline(_SAMPLE_BYTES)
    return "\r\n" if line.endswith("\r\n") else "\n"


def detect_format(path: Path, *, encoding: str | None, delimiter: str | None) -> CsvFormat:
    """The file's `CsvFormat`; given values are kept, the others detected.

    Raises:
        CsvFormatError: binary file, an unknown codec, or a delimiter outside ``, ; TAB |``.
        FileNotFoundError: no such file.
    """
    note = ""
    if encoding is None:
        encoding, note = detect_encoding(path)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CsvFormatError(f"unknown encoding {encoding!r}") from None
    if delimiter is None:
        with path.open("r", encoding=encoding, newline="", errors="replace") as fh:
            delimiter = sniff_delimiter(fh.read(_SAMPLE_BYTES // 4))
    elif len(delimiter) != 1 or delimiter not in DELIMITERS:
        raise CsvFormatError(f"delimiter must be one of , ; TAB |, got {delimiter!r}")
    return CsvFormat(encoding, delimiter, _detect_newline(path, encoding), note)


@contextlib.contextmanager
def atomic_replace(path: Path, *, encoding: str) -> Iterator[IO[str]]:
    """Write a new version of `path` all-or-nothing.

    Writes to a temporary file in the same directory (so the rename stays on one file
    system), flushes and fsyncs it, keeps the original's permissions, then `os.replace`s the
    original. If anything fails before the rename, the original is untouched and the
    temporary file is removed. A process killed mid-write cannot remove its temporary file:
    the next write removes it (see `remove_stale_temp_files`).
    """
    remove_stale_temp_files(path)
    directory = path.parent
    # The writer's process id in the name tells the next run whether the file is abandoned.
    fd, tmp_name = tempfile.mkstemp(
        dir=directory, prefix=f".{path.name}.{os.getpid()}.", suffix=_TMP_SUFFIX
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644  # mkstemp's 0600 would hide a new file from its readers
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Make the rename itself durable; some platforms cannot open directories.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_TMP_SUFFIX = ".tmp"
# What follows ".<name>." in a temporary file's name: "<pid>.<random>.tmp" (mkstemp's random
# part is 8 characters of [a-z0-9_]); before process ids were added, "<random>.tmp".
_TMP_NAME = re.compile(r"^(\d{1,10})\.[a-z0-9_]{8}\.tmp$")
_LEGACY_TMP_NAME = re.compile(r"^[a-z0-9_]{8}\.tmp$")
STALE_TEMP_SECONDS = 3600.0
"""A temporary file whose writer cannot be identified counts as abandoned after this long."""


def remove_stale_temp_files(path: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files earlier writes of `path` left behind when they were killed.

    `atomic_replace` names its temporary file ``.<name>.<pid>.<random>.tmp``. One whose
    process no longer runs on this machine is abandoned and removed at once; one whose
    process still runs belongs to a write in progress and is kept (unless older than a day:
    the process id was reused). A file in the older ``.<name>.<random>.tmp`` form, without a
    process id, is removed once `STALE_TEMP_SECONDS` old. Each removal is logged.

    Returns:
        The files removed.
    """
    now = time.time() if now is None else now
    prefix = f".{path.name}."
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        rest = name[len(prefix) :]
        ours = _TMP_NAME.match(rest)
        if ours is not None:
            abandoned = not _process_runs(int(ours[1])) or age > 24 * 3600
        elif _LEGACY_TMP_NAME.match(rest):
            abandoned = age > STALE_TEMP_SECONDS
        else:
            continue  # not one of ours (e.g. a temporary file of "<name>.bak")
        if not abandoned:
            continue
        with contextlib.suppress(FileNotFoundError):
            Path(entry.path).unlink()
            removed.append(Path(entry.path))
            logger.info("Removed %s, left behind by an interrupted write of %s", name, path.name)
    return removed


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another write of ours, maybe in another thread
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (owned by someone else) or we cannot tell: keep the file
    return True
