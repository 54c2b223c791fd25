"""The application with every command registered on it (importing this module registers them)."""

import importlib

from scanner.cli.base import app, main

# Imported in this order, they list their commands in this order in `scanner --help`.
COMMAND_MODULES = ("measure", "stores", "detect", "visual", "bench")
for _name in COMMAND_MODULES:
    importlib.import_module(f"scanner.cli.{_name}")

__all__ = ["app", "main"]
