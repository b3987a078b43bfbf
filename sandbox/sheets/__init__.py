"""Loopback Google Sheets v4 emulator for gspread: values, metadata, quotas and fault injection."""

from sandbox.sheets.app import Limits, SheetsEmulator, SheetsSandboxApp, create_app

__all__ = ["Limits", "SheetsEmulator", "SheetsSandboxApp", "create_app"]
