"""MedBrief headless core: model loading, prompts, constrained generation, ICD lookup, validation.

This package never imports Qt or ``desktop``; ``tests/test_layering.py`` proves it.
"""

__version__ = "0.1.0"
