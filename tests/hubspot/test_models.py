"""The emulator's answers deserialize into hubspot-api-client's own models (its validation on)."""

from __future__ import annotations

from hubspot import HubSpot

from sandbox.hubspot.fixtures import HubSpotSandbox


def test_answers_fit_the_generated_models(hubspot_sandbox: HubSpotSandbox) -> None:
    seeded = hubspot_sandbox.seed(5)
    first = str(seeded["first_id"])
    list_id = hubspot_sandbox.control("POST", "lists", json={"ids": [int(first)]})["listId"]
    client = HubSpot(access_token=hubspot_sandbox.token, host=hubspot_sandbox.url)

    page = client.crm.contacts.basic_api.get_page(limit=2, properties=["email"])
    assert len(page.results) == 2 and page.paging.next.after
    assert page.results[0].created_at is not None and page.results[0].archived is False

    one = client.crm.contacts.basic_api.get_by_id(first, properties=["firstname"])
    assert one.id == first and "firstname" in one.properties

    found = client.crm.contacts.search_api.do_search(
        {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": first}]}
            ],
            "limit": 10,
        }
    )
    assert found.total == 1 and found.results[0].id == first

    updated = client.crm.contacts.batch_api.update(
        {"inputs": [{"id": first, "properties": {"firstname": "Ada"}}]}
    )
    assert updated.status == "COMPLETE" and updated.results[0].properties["firstname"] == "Ada"
    partial = client.crm.contacts.batch_api.update(
        {"inputs": [{"id": first, "properties": {}}, {"id": "424242", "properties": {}}]}
    )
    assert partial.num_errors == 1 and partial.errors[0].context == {"ids": ["424242"]}
    read = client.crm.contacts.batch_api.read(
        {"inputs": [{"id": first}], "properties": ["email"], "propertiesWithHistory": []}
    )
    assert read.results[0].id == first

    props = client.crm.properties.core_api.get_all("contacts")
    assert any(p.name == "hs_email_optout" and p.type == "bool" for p in props.results)
    groups = client.crm.properties.groups_api.get_all("contacts")
    assert any(g.name == "contactinformation" for g in groups.results)
    members = client.crm.lists.memberships_api.get_page(list_id, limit=10)
    assert [m.record_id for m in members.results] == [first]
