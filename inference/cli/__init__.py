"""The ``medbrief`` command line: ``main`` builds the parser from one module per command; every expected
failure is one line and a documented exit code."""

from inference.cli.main import main

__all__ = ["main"]
