"""The Salesforce and Sheets emulators fuzzed in-process: no request may cause a 5xx.

Neither emulator is a FastAPI app (they are plain Starlette, as the real services are not
described by OpenAPI), so schemathesis has no schema to read; hypothesis generates requests
from the routes each one serves instead, with real ids and tokens in part of the cases so the
deep paths run. Bounded by default; COLDSEND_FUZZ_EXAMPLES raises the count.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox._server import serving
from sandbox.salesforce.app import create_app as create_salesforce
from sandbox.sheets.app import create_app as create_sheets

EXAMPLES = int(os.environ.get("COLDSEND_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_segment = st.one_of(
    _text.map(lambda t: t.replace("/", "").replace("?", "").replace("#", "")),
    st.sampled_from(["Lead", "Contact", "Account", "..", "%00", "%2F", "00Q000000000001AAA"]),
)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_body = st.one_of(
    st.none(),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
_params = st.dictionaries(
    st.sampled_from(
        [
            "q",
            "valueInputOption",
            "valueRenderOption",
            "majorDimension",
            "ranges",
            "includeGridData",
            "locator",
            "maxRecords",
            "insertDataOption",
            "x",
        ]
    ),
    _text,
    max_size=3,
)


class Client(requests.Session):
    """A session on one loopback server: paths relative to its URL, no proxies from the env."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.trust_env = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.url + str(url), *args, **kwargs)


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


# -- Salesforce --------------------------------------------------------------------------------

SF_APP = create_salesforce(client_secret="fuzz-secret", password="fuzz-pass", security_token="t")
SF_TOKEN = SF_APP.state.issue_token()
SF_TEMPLATES = [
    ("GET", "/sobjects"),
    ("GET", "/sobjects/{0}/describe"),
    ("GET", "/sobjects/{0}/{1}"),
    ("PATCH", "/sobjects/{0}/{1}"),
    ("GET", "/query"),
    ("GET", "/query/{0}"),
    ("GET", "/limits"),
    ("PATCH", "/composite/sobjects"),
    ("POST", "/jobs/ingest"),
    ("GET", "/jobs/ingest/{0}"),
    ("PATCH", "/jobs/ingest/{0}"),
    ("DELETE", "/jobs/ingest/{0}"),
    ("PUT", "/jobs/ingest/{0}/batches"),
    ("GET", "/jobs/ingest/{0}/{1}"),
    ("POST", "/jobs/query"),
    ("GET", "/jobs/query/{0}"),
    ("PATCH", "/jobs/query/{0}"),
    ("GET", "/jobs/query/{0}/results"),
]


@pytest.fixture(scope="module")
def sf_client() -> Iterator[Client]:
    with serving(SF_APP) as server, Client(server.url) as client:
        client.post("/_sandbox/seed", json={"count": 5, "bad_every": 2}).raise_for_status()
        yield client


@FUZZ
@given(
    template=st.sampled_from(SF_TEMPLATES),
    segments=st.lists(_segment, min_size=2, max_size=2),
    params=_params,
    body=_body,
    authorised=st.booleans(),
    soql=st.one_of(
        st.none(),
        _text,
        st.sampled_from(
            [
                "SELECT Id, Email FROM Lead WHERE Email = 'a\\'b'",
                "SELECT COUNT() FROM Lead WHERE LeadSource IN ('x', 'y') AND SystemModstamp > 2024-01-01T00:00:00Z",
                "SELECT Id FROM Lead WHERE Company LIKE '%\\_%' ORDER BY SystemModstamp LIMIT 3",
                "SELECT Id FROM Lead WHERE (Email != null OR Email = '') AND NOT Id = null",
                "SELECT Id FROM Nope",
                "SELECT Id FROM Lead WHERE Email = 'x",
                "SELECT FROM",
            ]
        ),
    ),
)
def test_salesforce_emulator_never_answers_5xx(
    sf_client: Client,
    template: tuple[str, str],
    segments: list[str],
    params: dict[str, str],
    body: bytes | None,
    authorised: bool,
    soql: str | None,
) -> None:
    method, path = template
    url = "/services/data/v59.0" + path.format(*(_quote(s) for s in segments))
    if soql is not None and path == "/query":
        params = {**params, "q": soql}
    if path == "/jobs/query" and soql is not None:
        body = json.dumps({"operation": "query", "query": soql}).encode()
    headers = {"Authorization": f"Bearer {SF_TOKEN}"} if authorised else {}
    headers["Content-Type"] = (
        "application/json" if path != "/jobs/ingest/{0}/batches" else "text/csv"
    )
    response = sf_client.request(method, url, params=params, data=body, headers=headers)
    assert response.status_code < 500, (method, url, params, body, response.text[:300])


@FUZZ
@given(
    body=_body,
    form=st.dictionaries(
        st.sampled_from(["grant_type", "client_id", "client_secret", "username", "password"]),
        _text,
        max_size=5,
    ),
)
def test_salesforce_logins_never_answer_5xx(
    sf_client: Client, body: bytes | None, form: dict[str, str]
) -> None:
    oauth = sf_client.post("/services/oauth2/token", data=form)
    assert oauth.status_code < 500, (form, oauth.text[:300])
    soap = sf_client.post(
        "/services/Soap/u/59.0",
        data=body,
        headers={"Content-Type": "text/xml", "SOAPAction": "login"},
    )
    # SOAP reports faults as HTTP 500 by protocol (Salesforce does too): allowed only as a
    # well-formed fault naming its code, never as a crash.
    if soap.status_code >= 500:
        assert "<faultcode>" in soap.text and "soapenv:Fault" in soap.text, soap.text[:300]


# -- Google Sheets -----------------------------------------------------------------------------

SHEETS_APP = create_sheets(reads_per_minute=None, writes_per_minute=None)
_ranges = st.one_of(
    _text,
    st.sampled_from(
        [
            "Sheet1",
            "Sheet1!A1:C3",
            "'Sheet 1'!A:A",
            "A1",
            "Sheet1!1:2",
            "Sheet1!ZZZZ9",
            "Sheet1!A0",
            "Sheet1!B2:A1",
            "''!A1",
            "'it''s'!A1",
            "Sheet1!A1:A1048577",
            "Nope!A1",
            "Sheet1!R1C1",
        ]
    ),
)


@pytest.fixture(scope="module")
def sheets_client() -> Iterator[tuple[Client, str]]:
    with serving(SHEETS_APP) as server, Client(server.url) as client:
        made = client.post(
            "/_sandbox/spreadsheets",
            json={"sheets": {"Sheet1": [["Email", "Company"], ["a@x.com", "Acme"]], "Sheet 1": []}},
        )
        yield client, made.json()["spreadsheet_id"]


@FUZZ
@given(
    kind=st.sampled_from(
        [
            "meta",
            "get",
            "update",
            "append",
            "clear",
            "batchGet",
            "batchUpdate",
            "batchClear",
            "sheetBatchUpdate",
        ]
    ),
    real_id=st.booleans(),
    fake_id=_segment,
    rng=_ranges,
    params=_params,
    body=st.one_of(
        _body,
        _json.map(
            lambda v: json.dumps({"values": v, "data": v, "requests": v, "ranges": v}).encode()
        ),
    ),
)
def test_sheets_emulator_never_answers_5xx(
    sheets_client: tuple[Client, str],
    kind: str,
    real_id: bool,
    fake_id: str,
    rng: str,
    params: dict[str, str],
    body: bytes | None,
) -> None:
    client, spreadsheet_id = sheets_client
    sid = spreadsheet_id if real_id else _quote(fake_id)
    base = f"/v4/spreadsheets/{sid}"
    r = _quote(rng)
    method, url = {
        "meta": ("GET", base),
        "get": ("GET", f"{base}/values/{r}"),
        "update": ("PUT", f"{base}/values/{r}"),
        "append": ("POST", f"{base}/values/{r}:append"),
        "clear": ("POST", f"{base}/values/{r}:clear"),
        "batchGet": ("GET", f"{base}/values:batchGet"),
        "batchUpdate": ("POST", f"{base}/values:batchUpdate"),
        "batchClear": ("POST", f"{base}/values:batchClear"),
        "sheetBatchUpdate": ("POST", f"{base}:batchUpdate"),
    }[kind]
    if kind == "batchGet":
        params = {**params, "ranges": rng}
    response = client.request(
        method,
        url,
        params=params,
        data=body if method != "GET" else None,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code < 500, (method, url, params, body, response.text[:300])
