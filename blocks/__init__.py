"""Prefect Blocks: ColdSend, Salesforce and Google Sheets credentials, and saved lead stores.

Register them all with ``prefect block register -m blocks``.
"""

from blocks.coldsend import ColdSendCredentials
from blocks.leads import CsvFileLeads, GoogleSheetLeads, LeadStore, SalesforceLeads
from blocks.salesforce import SalesforceCredentials
from blocks.sheets import GoogleSheetsCredentials

__all__ = [
    "ColdSendCredentials",
    "CsvFileLeads",
    "GoogleSheetLeads",
    "GoogleSheetsCredentials",
    "LeadStore",
    "SalesforceCredentials",
    "SalesforceLeads",
]
