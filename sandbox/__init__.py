"""Loopback emulators of ColdSend, Salesforce, Google Sheets and HubSpot (dry runs, the demo, CI).

`sandbox.clients` gives your own code the real client libraries wired to them.
"""
