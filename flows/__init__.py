"""Prefect flows and tasks: sync leads, launch campaigns, write statuses back."""
