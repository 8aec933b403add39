"""Summary templates: what a summary's sections are, read from TOML files a department edits without code.

``spec`` is a template and its bounds, ``files`` reads one file (inheritance and locking included), ``catalog``
lists the built-in and department templates, ``content`` is a summary written with a template."""
