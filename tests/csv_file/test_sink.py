"""CsvStatusSink: in-place atomic updates, format preservation; rejects CSV neutralisation."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.csv_file import CsvStatusSink, StatusColumns, write_rejects_csv
from connectors.csv_file.format import STALE_TEMP_SECONDS, remove_stale_temp_files
from connectors.leads import LeadStatus, Reject, StatusUpdate

Writer = Callable[[bytes], Path]
S = LeadStatus
ONLY_STATUS = StatusColumns(opened=None, replied=None, unsubscribed=None, bounced=None)


def test_updates_in_place_preserving_format(write_bytes: Writer) -> None:
    original = (
        '\ufeffEmail;Name;Note\r\na@example.com;Zoë;"multi\r\nline"\r\nb@example.com;Bob;x\r\n'
    ).encode()
    path = write_bytes(original)
    result = CsvStatusSink(path).write_statuses(
        [StatusUpdate("a@example.com", S.OPENED), StatusUpdate("zz@example.com", S.SENT)]
    )
    assert (result.written, result.not_found, result.balanced) == (1, ["zz@example.com"], True)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM kept
    text = data.decode("utf-8-sig")
    assert text == (
        "Email;Name;Note;ColdSend Status;ColdSend Opened;ColdSend Replied;"
        "ColdSend Unsubscribed;ColdSend Bounced\r\n"
        'a@example.com;Zoë;"multi\r\nline";OPENED;TRUE;FALSE;FALSE;FALSE\r\n'
        "b@example.com;Bob;x\r\n"
    )


def test_cp1252_file_keeps_its_encoding(write_bytes: Writer) -> None:
    path = write_bytes("Email,Name\na@example.com,José\n".encode("cp1252"))
    CsvStatusSink(path, columns=ONLY_STATUS).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    assert path.read_bytes() == "Email,Name,ColdSend Status\na@example.com,José,SENT\n".encode(
        "cp1252"
    )


def test_never_backwards_and_nothing_changed_leaves_file_untouched(write_bytes: Writer) -> None:
    path = write_bytes(b"Email,ColdSend Status\na@example.com,REPLIED\nb@example.com,SENT\n")
    sink = CsvStatusSink(path, columns=ONLY_STATUS)
    before = path.read_bytes()
    os.utime(path, (1_000_000, 1_000_000))
    result = sink.write_statuses(
        [StatusUpdate("a@example.com", S.SENT), StatusUpdate("b@example.com", S.SENT)]
    )
    assert (result.held_back, result.unchanged, result.written) == (1, 1, 0)
    assert path.stat().st_mtime == 1_000_000
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]


def test_crash_mid_write_leaves_original_intact(
    write_bytes: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = b"".join(b"user%d@example.com,x\n" % i for i in range(5_000))
    path = write_bytes(b"Email,Name\n" + rows)
    before = path.read_bytes()
    real_writer = csv.writer
    written = [0]

    class Exploding:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def writerow(self, row: object) -> object:
            written[0] += 1
            if written[0] == 2_500:
                raise OSError("disk full")
            return self.inner.writerow(row)  # type: ignore[attr-defined]

        def writerows(self, rows: object) -> object:
            return self.inner.writerows(rows)  # type: ignore[attr-defined]

    monkeypatch.setattr(csv, "writer", lambda *a, **k: Exploding(real_writer(*a, **k)))
    with pytest.raises(OSError, match="disk full"):
        CsvStatusSink(path).write_statuses(
            [StatusUpdate(f"user{i}@example.com", S.SENT) for i in range(5_000)]
        )
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]  # the temporary file is gone
    monkeypatch.setattr(csv, "writer", real_writer)
    result = CsvStatusSink(path, columns=ONLY_STATUS).write_statuses(
        [StatusUpdate("user4999@example.com", S.SENT)]
    )
    assert result.written == 1
    assert path.read_bytes().endswith(b"user4999@example.com,x,SENT\n")


def test_crash_before_rename_leaves_original_intact(
    write_bytes: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bytes(b"Email\na@example.com\n")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        CsvStatusSink(path).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    assert path.read_bytes() == b"Email\na@example.com\n"
    assert list(path.parent.iterdir()) == [path]


def test_rejects_csv_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "rejects.csv"
    count = write_rejects_csv(
        path,
        [
            Reject(
                reason="invalid email '=HYPERLINK(\"x\")'", row_number=3, email='=HYPERLINK("x")'
            ),
            Reject(reason="duplicate", row_number=4, email="-2+3@example.com", source_id="@id"),
            Reject(reason="+cmd", row_number=None, email="\t=1"),
            Reject(reason="fine", row_number=5, email="a@example.com"),
        ],
    )
    assert count == 4
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "source_id", "email", "reason"]
    assert rows[1] == ["3", "", '\'=HYPERLINK("x")', "invalid email '=HYPERLINK(\"x\")'"]
    assert rows[2] == ["4", "'@id", "'-2+3@example.com", "duplicate"]
    assert rows[3] == ["", "", "'\t=1", "'+cmd"]
    assert rows[4] == ["5", "", "a@example.com", "fine"]


def test_default_match_key_is_the_column_the_sync_reads_emails_from(write_bytes: Writer) -> None:
    from connectors.csv_file import CsvLeadSource
    from connectors.leads import FieldMapping, Lead

    # A HubSpot-style export: no 'Email' column, the sync recognises 'E-mail address'.
    path = write_bytes(b"E-mail address,Company Name\na@example.com,Acme\n")
    leads = [x for x in CsvLeadSource(path).read() if isinstance(x, Lead)]
    assert [(x.email, x.company) for x in leads] == [("a@example.com", "Acme")]
    result = CsvStatusSink(path, columns=ONLY_STATUS).write_statuses(
        [StatusUpdate("a@example.com", S.SENT)]
    )
    assert result.written == 1
    assert (
        path.read_text() == "E-mail address,Company Name,ColdSend Status\na@example.com,Acme,SENT\n"
    )
    # An explicit mapping is the match key too.
    path = write_bytes(b"Email,Backup\nold@example.com,b@example.com\n")
    mapping = FieldMapping(email="Backup")
    result = CsvStatusSink(path, mapping=mapping, columns=ONLY_STATUS).write_statuses(
        [StatusUpdate("b@example.com", S.OPENED)]
    )
    assert (result.written, result.not_found) == (1, [])


_KILLED_MID_WRITE = """
import os, signal, sys
from pathlib import Path
from connectors.csv_file.format import atomic_replace

with atomic_replace(Path(sys.argv[1]), encoding="utf-8") as fh:
    fh.write("email\\nhalf-written@example.com\\n")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_back_killed_mid_write_leaves_no_temporary_file_for_good(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("Email,ColdSend Status\na@example.com,\n", encoding="utf-8")
    before = path.read_bytes()
    # A real kill: nothing in the dying process gets to clean up.
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(path)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".leads.csv.")
    assert path.read_bytes() == before  # the user's file is untouched

    # A temporary file of a write still running (this test's own parent process) is kept; one
    # of another file is not ours to judge.
    running = tmp_path / f".leads.csv.{os.getppid()}.abcd1234.tmp"
    running.write_text("in progress", encoding="utf-8")
    other = tmp_path / ".leads.csv.bak.99999.abcd1234.tmp"
    other.write_text("someone else's", encoding="utf-8")

    result = CsvStatusSink(path, columns=ONLY_STATUS).write_statuses(
        [StatusUpdate("a@example.com", S.SENT)]
    )

    assert result.written == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, running.name, other.name]
    )


def test_an_old_temporary_file_without_a_process_id_is_removed_once_stale(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("Email\n", encoding="utf-8")
    legacy = tmp_path / ".leads.csv.k2j4h5g6.tmp"
    legacy.write_text("left by an older version", encoding="utf-8")
    mtime = legacy.stat().st_mtime
    assert remove_stale_temp_files(path, now=mtime + STALE_TEMP_SECONDS - 1) == []
    assert remove_stale_temp_files(path, now=mtime + STALE_TEMP_SECONDS + 1) == [legacy]
    assert not legacy.exists()
