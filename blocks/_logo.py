"""The logo Prefect's UI shows beside every block of this integration (blocks/logo.png)."""

from pydantic import HttpUrl

LOGO_URL = HttpUrl(
    "https://raw.githubusercontent.com/prefect-coldsend/prefect-coldsend/main/blocks/logo.png"
)
"""Square, 256 px; the file is blocks/logo.png in this repository (tests read it from there)."""
