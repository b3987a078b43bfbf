"""Loopback emulator of the Salesforce REST, Bulk 2.0 and login APIs that simple-salesforce uses."""

from sandbox.salesforce.app import PAGE_SIZE, SalesforceSandboxApp, SalesforceState, create_app

__all__ = ["PAGE_SIZE", "SalesforceSandboxApp", "SalesforceState", "create_app"]
