"""Loopback HubSpot CRM v3 emulator for hubspot-api-client: contacts, search, batches, limits."""

from sandbox.hubspot.app import ALL_SCOPES, HubSpotSandboxApp, HubSpotState, create_app
from sandbox.hubspot.limits import Limits

__all__ = ["ALL_SCOPES", "HubSpotSandboxApp", "HubSpotState", "Limits", "create_app"]
