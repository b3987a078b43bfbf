"""Prefect Blocks: ColdSend, Salesforce and Google Sheets credentials, saved lead stores and
report storage.

Register them all with ``prefect block register -m blocks``.
"""

from blocks.coldsend import ColdSendCredentials
from blocks.leads import CsvFileLeads, GoogleSheetLeads, LeadStore, SalesforceLeads
from blocks.salesforce import SalesforceCredentials
from blocks.sheets import GoogleSheetsCredentials
from blocks.storage import ReportStorage

__all__ = [
    "ColdSendCredentials",
    "CsvFileLeads",
    "GoogleSheetLeads",
    "GoogleSheetsCredentials",
    "LeadStore",
    "ReportStorage",
    "SalesforceCredentials",
    "SalesforceLeads",
]
