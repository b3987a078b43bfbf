"""Loopback emulators of ColdSend, Salesforce and Google Sheets (dry runs, the demo, CI)."""
