"""HubSpotStatusSink through the real hubspot-api-client against the loopback emulator."""

from __future__ import annotations

import pytest

from connectors.hubspot import (
    HubSpotScopeError,
    HubSpotStatusSink,
    StatusProperties,
)
from connectors.leads import LeadStatus, MappingError, StatusUpdate
from sandbox.hubspot.app import READ, SCHEMA_READ, WRITE
from sandbox.hubspot.fixtures import HubSpotSandbox
from tests.hubspot.conftest import ConnectionFactory


def _ids(sandbox: HubSpotSandbox, count: int) -> list[str]:
    seeded = sandbox.seed(count)
    first = int(seeded["first_id"])
    return [str(first + i) for i in range(count)]


def test_missing_status_properties_are_created_in_a_coldsend_group(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    (cid,) = _ids(hubspot_sandbox, 1)
    sink = HubSpotStatusSink(connect())
    result = sink.write_statuses([StatusUpdate("x@example.com", LeadStatus.OPENED, cid)])
    assert result.written == 1 and result.balanced
    store = hubspot_sandbox.app.state.store
    assert store.groups["coldsend"] == "ColdSend"
    for name in StatusProperties().names():
        assert store.properties[name].group_name == "coldsend"
    assert store.properties["coldsend_status"].type == "enumeration"
    assert store.contacts[int(cid)].props["coldsend_status"] == "OPENED"
    assert store.contacts[int(cid)].props["coldsend_opened"] == "true"
    # A second sink finds them: nothing created twice.
    assert HubSpotStatusSink(connect()).ensure_properties() == []


def test_without_the_schema_scope_the_error_names_it(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    (cid,) = _ids(hubspot_sandbox, 1)
    token = hubspot_sandbox.new_token([READ, WRITE, SCHEMA_READ])
    sink = HubSpotStatusSink(connect(access_token=token))
    with pytest.raises(HubSpotScopeError, match=r"crm\.schemas\.contacts\.write") as info:
        sink.write_statuses([StatusUpdate("x@example.com", LeadStatus.SENT, cid)])
    assert "coldsend_status" in str(info.value)
    assert info.value.scopes == ["crm.schemas.contacts.write"]
    assert token not in str(info.value)
    with pytest.raises(MappingError, match="coldsend_status"):
        HubSpotStatusSink(connect(), create_properties=False).ensure_properties()


def test_only_changes_are_written_and_statuses_never_go_backwards(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    ids = _ids(hubspot_sandbox, 250)
    conn = connect()
    sink = HubSpotStatusSink(conn)
    first = sink.write_statuses([StatusUpdate("", LeadStatus.REPLIED, i) for i in ids])
    assert (first.written, first.balanced) == (250, True)
    hubspot_sandbox.reset_stats()
    updates = [StatusUpdate("", LeadStatus.SENT, i) for i in ids[:100]]  # late, behind REPLIED
    updates += [StatusUpdate("", LeadStatus.REPLIED, i) for i in ids[100:200]]  # no change
    updates += [StatusUpdate("", LeadStatus.BOUNCED, i) for i in ids[200:]]  # final wins
    updates += [StatusUpdate("", LeadStatus.SENT, "00Q000000000001")]  # another store's id
    result = sink.write_statuses(updates)
    assert (result.written, result.unchanged, result.held_back) == (50, 100, 100)
    assert result.not_found == ["00Q000000000001"] and result.balanced
    requests = hubspot_sandbox.stats()["requests"]
    # 3 batch reads of 100, 1 batch update holding only the 50 contacts that change.
    assert requests["POST /crm/v3/objects/contacts/batch/read"] == 3
    assert requests["POST /crm/v3/objects/contacts/batch/update"] == 1
    contacts = hubspot_sandbox.app.state.store.contacts
    assert {contacts[int(i)].props["coldsend_status"] for i in ids[:200]} == {"REPLIED"}
    held = contacts[int(ids[200])].props
    assert (held["coldsend_status"], held["coldsend_bounced"], held["coldsend_replied"]) == (
        "BOUNCED",
        "true",
        "true",  # flags only move forward
    )


def test_a_207_is_taken_row_by_row(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    ids = _ids(hubspot_sandbox, 120)
    sink = HubSpotStatusSink(connect())
    sink.ensure_properties()
    hubspot_sandbox.control(
        "PUT", "row-faults", json={"ids": [ids[3], ids[110]], "message": "Contact is locked"}
    )
    result = sink.write_statuses([StatusUpdate("", LeadStatus.OPENED, i) for i in ids])
    assert result.written == 118 and result.balanced
    assert sorted((f.key, f.reason) for f in result.failures) == [
        (ids[3], "VALIDATION_ERROR: Contact is locked"),
        (ids[110], "VALIDATION_ERROR: Contact is locked"),
    ]
    contacts = hubspot_sandbox.app.state.store.contacts
    assert "coldsend_status" not in contacts[int(ids[3])].props
    assert contacts[int(ids[4])].props["coldsend_status"] == "OPENED"


def test_contacts_that_no_longer_exist_are_not_found(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    ids = _ids(hubspot_sandbox, 3)
    hubspot_sandbox.app.state.store.archive(int(ids[1]))
    result = HubSpotStatusSink(connect()).write_statuses(
        [StatusUpdate("", LeadStatus.SENT, i) for i in ids]
    )
    assert result.written == 2 and result.not_found == [ids[1]] and result.balanced


def test_matching_by_email(hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory) -> None:
    hubspot_sandbox.add_contacts([{"email": "Ada@Example.com"}, {"email": "bob@example.com"}])
    result = HubSpotStatusSink(connect(), match_by="email").write_statuses(
        [
            StatusUpdate(" ada@example.com", LeadStatus.REPLIED),
            StatusUpdate("nobody@example.com", LeadStatus.SENT),
            StatusUpdate("not an email", LeadStatus.SENT),
        ]
    )
    assert result.written == 1 and result.not_found == ["nobody@example.com"]
    assert [f.key for f in result.failures] == ["not an email"] and result.balanced


def test_a_status_property_of_the_wrong_type_is_named(
    hubspot_sandbox: HubSpotSandbox, connect: ConnectionFactory
) -> None:
    with pytest.raises(MappingError, match="'createdate' \\(status\\) is read-only"):
        HubSpotStatusSink(
            connect(), properties=StatusProperties(status="createdate")
        ).ensure_properties()
    with pytest.raises(MappingError, match="'hs_object_id' \\(flag\\) is read-only"):
        HubSpotStatusSink(
            connect(), properties=StatusProperties(opened="hs_object_id")
        ).ensure_properties()
    with pytest.raises(ValueError, match="internal name"):
        StatusProperties(status="ColdSend Status")
