"""Subcommands of `mlops`, one module per concern; see ``cli.main``."""
