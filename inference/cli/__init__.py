"""The ``medbrief`` command line (``commands``): every expected failure is one line and a documented exit code."""

from inference.cli.commands import main

__all__ = ["main"]
