"""Plain typed Python connectors for ColdSend, Salesforce, Google Sheets and CSV files.

Nothing in this package imports Prefect, so it can be used and tested on its own.
"""
