"""The subcommands of ``advisor``: one module per family, sharing ``options``."""
