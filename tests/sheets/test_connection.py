"""SheetsConnection: the same client code for Google and the sandbox, secrets kept out of sight."""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.sheets import (
    SheetsConnection,
    SheetsCredentialsError,
    SheetsLeadSource,
    SheetsPermissionError,
)
from sandbox.sheets.fixtures import SheetsSandbox


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _info(pem: str, token_uri: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sync@demo.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def test_service_account_flow_through_sandbox(
    sheets_sandbox: SheetsSandbox, private_key_pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["Email"], ["a@example.com"]]})
    info = _info(private_key_pem, f"{sheets_sandbox.url}/token")
    conn = SheetsConnection(service_account_info=info, api_base_url=sheets_sandbox.url)
    caplog.set_level(logging.DEBUG)
    leads = list(SheetsLeadSource(conn.client(), spreadsheet_id=sid).read())
    assert [lead.email for lead in leads] == ["a@example.com"]
    assert sheets_sandbox.stats()["POST /token"] == 1
    secret_bits = private_key_pem.splitlines()[1]
    assert secret_bits not in repr(conn) and secret_bits not in caplog.text
    assert (
        repr(conn) == f"SheetsConnection(api_base_url={sheets_sandbox.url!r}, auth=service_account)"
    )


def test_access_token_never_in_repr_or_errors(sheets_sandbox: SheetsSandbox) -> None:
    conn = SheetsConnection(api_base_url=sheets_sandbox.url, access_token="ya29.SECRET")
    assert "SECRET" not in repr(conn)
    with pytest.raises(Exception) as info:
        list(SheetsLeadSource(conn.client(), spreadsheet_id="missing").read())
    assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value)


def test_bad_service_account_info_is_reported_without_the_key(private_key_pem: str) -> None:
    with pytest.raises(SheetsCredentialsError, match="private_key"):
        SheetsConnection(service_account_info={"client_email": "x", "token_uri": "http://t"})
    broken = _info(
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n", "http://t"
    )
    conn = SheetsConnection(service_account_info=broken)
    with pytest.raises(SheetsCredentialsError) as info:
        conn.client()
    assert "TOPSECRET" not in str(info.value)
    assert info.value.__cause__ is None  # the original error (which may quote the key) is cut
    assert "TOPSECRET" not in json.dumps(repr(conn))


def test_permission_errors_are_typed(sheets_sandbox: SheetsSandbox) -> None:
    # The emulator lets anyone in; a 403 from Google surfaces as SheetsPermissionError.
    sheets_sandbox.set_faults(error_rate=1.0, error_statuses=[403])
    conn = SheetsConnection(api_base_url=sheets_sandbox.url)
    with pytest.raises(SheetsPermissionError):
        list(SheetsLeadSource(conn.client(), spreadsheet_id="x").read())
