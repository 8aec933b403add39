"""Full-text search of the history: a record's text and its latest summary (FTS5 trigram, which reads Chinese)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from inference.record.clinical_terms import expand_terms


def search_ids(session: Session, query: str) -> list[int]:
    """Documents whose text or latest summary contains the query, or its standard form (心衰 → 心力衰竭)."""
    ids: list[int] = []
    for form in dict.fromkeys([query.strip(), expand_terms(query.strip())]):
        if form:
            ids += [i for i in _search_form(session, form) if i not in ids]
    return ids


def _search_form(session: Session, query: str) -> list[int]:
    if len(query) >= 3:  # the trigram index answers MATCH for three characters and more
        phrase = '"' + query.replace('"', '""') + '"'
        rows = session.execute(text("SELECT DISTINCT document_id FROM search_index WHERE search_index MATCH :q"),
                               {"q": phrase})
    else:  # 心衰, 肺炎: shorter than a trigram, so scan (FTS5's LIKE finds nothing below 3 characters)
        rows = session.execute(text("SELECT DISTINCT document_id FROM search_index WHERE instr(content, :q) > 0"),
                               {"q": query})
    return [int(row[0]) for row in rows]
