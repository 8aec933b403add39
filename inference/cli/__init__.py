"""The ``medbrief`` command line."""
