"""Subcommands of `mlops`, one module per concern; see ``jobs.cli``."""
