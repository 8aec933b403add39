"""Local history: every document, model run and doctor edit kept in one SQLite file (SQLAlchemy 2, WAL,
alembic migrations). Headless: the desktop and the CLI both use it; it knows nothing of widgets."""
