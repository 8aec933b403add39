"""MedBrief desktop: the PySide6 layer over the headless ``inference`` core. Widgets never call llama."""
