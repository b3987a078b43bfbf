"""Where full reports (every rejected row) are kept, and the web address a browser opens them at."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from pydantic import Field

from blocks._logo import LOGO_URL
from blocks._nested import SavesInnerBlocks

__all__ = ["ReportStorage"]


class ReportStorage(SavesInnerBlocks):
    """Storage for the full CSV files behind the flows' table artifacts, linked from the UI.

    A table artifact shows rejected rows up to a limit; the complete file goes to the
    filesystem block saved here (a `LocalFileSystem` on a shared or served disk, or a
    `RemoteFileSystem` on ``s3://``, ``gs://``, ``az://``, ... through fsspec), and the
    artifact links to it at an address a browser opens:

    * `public_url` + the file's path under the storage's base path, when given (a web
      server, a CDN or a bucket's website endpoint in front of the storage);
    * otherwise, for ``s3://`` and ``gs://`` storage, the file's page in the AWS or Google
      Cloud console (the viewer signs in there);
    * otherwise no link at all: the artifact names the file and says to set `public_url`.
      Never a ``file://`` address, which browsers refuse to open from a web page.

    The flows use the block named by the ``COLDSEND_REPORT_STORAGE`` environment variable,
    else the one named ``default``; with neither, files stay in the run's machine's reports
    directory and the artifact says so.

    Example:
        Save one (the filesystem block first, so the UI shows and edits it), then load it:
        ```python
        from prefect.filesystems import RemoteFileSystem
        from blocks import ReportStorage

        bucket = RemoteFileSystem(basepath="s3://acme-revops/coldsend-reports")
        bucket.save("coldsend-reports")
        ReportStorage(storage=bucket).save("default")

        storage = ReportStorage.load("BLOCK_NAME")
        print(storage.link("rejects.csv"))
        ```
    """

    _block_type_name = "ColdSend Report Storage"
    _block_type_slug = "coldsend-report-storage"
    _description = (
        "Where the ColdSend flows keep full reports (every rejected row) and the web address "
        "the Prefect UI links them at."
    )
    _documentation_url = "https://github.com/prefect-coldsend/prefect-coldsend#rejected-rows"  # type: ignore[assignment]
    _logo_url = LOGO_URL

    storage: LocalFileSystem | RemoteFileSystem = Field(
        default=...,
        title="Storage",
        description="A saved filesystem block receiving the files (local directory or fsspec URL).",
    )
    public_url: str | None = Field(
        default=None,
        title="Public URL",
        description=(
            "The web address of the storage's base path, e.g. https://files.acme.com/coldsend; "
            "links are this plus the file name. Leave empty for s3:// and gs:// storage to "
            "link the cloud console."
        ),
    )

    def write(self, name: str, content: bytes) -> str:
        """Write `content` as `name` under the storage's base path; returns where it went."""
        written = self.storage.write_path(name, content)
        return str(written)

    def link(self, name: str) -> str | None:
        """An address a browser opens for file `name`, or None when there is none to give."""
        if self.public_url:
            return f"{self.public_url.rstrip('/')}/{quote(name.lstrip('/'))}"
        basepath = self.storage.basepath or ""
        parts = urlsplit(basepath)
        path = "/".join(p for p in (parts.path.strip("/"), name.lstrip("/")) if p)
        if parts.scheme in ("s3", "s3a") and parts.netloc:
            return (
                f"https://s3.console.aws.amazon.com/s3/object/{quote(parts.netloc)}"
                f"?prefix={quote(path)}"
            )
        if parts.scheme in ("gs", "gcs") and parts.netloc:
            return (
                "https://console.cloud.google.com/storage/browser/_details/"
                f"{quote(parts.netloc)}/{quote(path)}"
            )
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{basepath.rstrip('/')}/{quote(name.lstrip('/'))}"
        return None

    def describe(self) -> str:
        """Where the files go, for messages: ``"s3://acme/coldsend"``."""
        return self.storage.basepath or "the working directory"
