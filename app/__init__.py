"""The application layer above flows/: the `prefect-coldsend` command line, the demo and serve."""
