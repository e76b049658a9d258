"""Subcommands of the ``netsim`` CLI: one module each, defining ``register(subparsers)``."""
