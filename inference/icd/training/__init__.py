"""Build-time only: learning the ICD lookup and writing the bundled table. Never shipped (the PyInstaller
spec leaves this package out) and never imported by the runtime (tests/test_layering.py)."""
