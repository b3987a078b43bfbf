"""Prefect Blocks: ColdSend, Salesforce and Google Sheets credentials and saved sync configs."""
