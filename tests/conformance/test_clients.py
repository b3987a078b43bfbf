"""`sandbox.clients`: each function returns the genuine library client, wired to a sandbox."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from sandbox.clients import hubspot_client, salesforce_client, sandbox_session, sheets_client
from sandbox.hubspot.fixtures import HubSpotSandbox


def test_hubspot_client_is_the_official_client_on_the_sandbox(
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    hs = hubspot_client(hubspot_sandbox.url, access_token=hubspot_sandbox.token)
    assert isinstance(hs, HubSpot)
    created = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "ada@example.com", "firstname": "Ada"}
        )
    )
    fetched = hs.crm.contacts.basic_api.get_by_id(created.id, properties=["email", "firstname"])
    assert (fetched.properties["email"], fetched.properties["firstname"]) == (
        "ada@example.com",
        "Ada",
    )
    assert [c.id for c in hs.crm.contacts.get_all()] == [created.id]


@pytest.mark.parametrize("url", ["127.0.0.1:8766", "ftp://127.0.0.1:8766", ""])
def test_a_url_that_is_not_a_sandbox_root_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(ValueError, match="prefect-coldsend sandbox"):
        sandbox_session(url)
    with pytest.raises(ValueError, match="prefect-coldsend sandbox"):
        sheets_client(url)


def test_missing_credentials_are_named() -> None:
    with pytest.raises(ValueError, match="security_token"):
        salesforce_client("http://127.0.0.1:8766", username="u", password="p")
    with pytest.raises(ValueError, match="access token"):
        hubspot_client("http://127.0.0.1:8768", access_token="")


def test_the_snippet_the_sandbox_command_prints_runs_as_pasted(tmp_path: object) -> None:
    from pathlib import Path

    from sandbox.stack import start_stack

    assert isinstance(tmp_path, Path)
    stack = start_stack(state_dir=tmp_path / "state")
    try:
        namespace: dict[str, object] = {}
        exec(stack.client_snippet(), namespace)  # noqa: S102 - the printed lines, as a user pastes them
        sf, gc, hs = namespace["sf"], namespace["gc"], namespace["hs"]
        lead = sf.Lead.create({"LastName": "Lovelace", "Company": "Engines"})  # type: ignore[attr-defined]
        assert lead["success"] is True
        assert gc.create("Leads").sheet1.title == "Sheet1"  # type: ignore[attr-defined]
        assert hs.crm.contacts.basic_api.get_page(limit=1).results == []  # type: ignore[attr-defined]
    finally:
        stack.stop()
    # The printed password and security token are kept with the state: a restart accepts them.
    again = start_stack(state_dir=tmp_path / "state")
    try:
        assert again.salesforce_password == stack.salesforce_password
        assert again.salesforce_security_token == stack.salesforce_security_token
        namespace = {}
        exec(again.client_snippet(), namespace)  # noqa: S102
        assert namespace["sf"].query("SELECT Name FROM Lead")["records"][0]["Name"] == "Lovelace"  # type: ignore[attr-defined]
    finally:
        again.stop()
