"""Prefect Blocks: ColdSend, Salesforce, HubSpot and Google Sheets credentials, saved lead stores
and report storage.

Register them all with ``prefect block register -m blocks``.
"""

from blocks.coldsend import ColdSendCredentials
from blocks.hubspot import HubSpotContacts, HubSpotCredentials
from blocks.leads import CsvFileLeads, GoogleSheetLeads, LeadStore, SalesforceLeads
from blocks.salesforce import SalesforceCredentials
from blocks.sheets import GoogleSheetsCredentials
from blocks.storage import ReportStorage

__all__ = [
    "ColdSendCredentials",
    "CsvFileLeads",
    "GoogleSheetLeads",
    "GoogleSheetsCredentials",
    "HubSpotContacts",
    "HubSpotCredentials",
    "LeadStore",
    "ReportStorage",
    "SalesforceCredentials",
    "SalesforceLeads",
]
