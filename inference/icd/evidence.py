"""Evidence → features: what supports one candidate code of a diagnosis string, as named numbers the
ranker weighs. Every row is built by feature name and checked against the ranker's feature list by name,
so a feature added, dropped or reordered on one side only is an error, not a silently shifted column."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

from inference.icd.learned import normalize_text
from inference.icd.ranker import FEATURES, MATCH_KINDS
from inference.icd.retrieval import Candidate

MEANING_TOP = 5  # names nearest in the learned encoder's space offered for the whole string


@dataclass
class Evidence:
    """What the lookup found for one code across the parts of a diagnosis string."""

    candidate: Candidate  # the best-scoring match, as the heuristic ranks it
    part: str  # a part of the string, the normalized string, or (cue and example items) the string as given
    rank: int = 99
    gap: float = 1.0
    parts: int = 0
    cue: float = 0.0
    neighbour_vote: float = 0.0
    neighbour_best: float = 0.0
    meaning_rank: int = 99
    from_lookup: bool = False


@dataclass(frozen=True)
class StringContext:
    """What every candidate of one string shares."""

    normalized: str
    n_parts: int
    detailed_share: float  # how many of the table's codes extend WHO codes (I50.900x018): editions rank differently


def features(
    item: Evidence, context: StringContext, category_examples: int, meaning: tuple[float, float] | None
) -> dict[str, float]:
    """``category_examples``: coded examples in the candidate's category; ``meaning``: the candidate name's
    cosine to the string and to its part in the learned encoder's space."""
    candidate = item.candidate
    kind = candidate.match.split(" ")[0]
    title = normalize_text(candidate.name)
    score = candidate.score if item.from_lookup else 0.0
    normalized = context.normalized
    text_cosine, part_cosine = meaning if meaning is not None else (-1.0, -1.0)  # a value no cosine takes
    return {
        "similarity": score,
        "similarity_squared": score * score,
        "best_in_part": item.rank == 0,
        "rank_in_part": min(item.rank, 10) / 10,
        "gap_to_part_best": item.gap,
        "parts_supporting": item.parts,
        "cue_precision": item.cue,
        "cue_only": item.cue > 0 and not item.from_lookup,
        **{f"kind_{k}": item.from_lookup and kind == k for k in MATCH_KINDS},
        "via_expansion": "expanded:" in candidate.match,
        "via_qualifier_removal": "qualifiers_removed" in candidate.match,
        "via_tumour_site": "tumour_site" in candidate.match,
        "category_prior": math.log1p(category_examples),
        "log_parts": math.log1p(context.n_parts),
        "subcategory_code": len(candidate.code.replace(".", "")) > 3,
        "unspecified_title": "未特指" in candidate.name,
        "title_length": min(len(title), 20) / 20,
        "title_chars_in_text": len(set(title) & set(normalized)) / max(len(set(title)), 1),
        "part_chars_in_title": len(set(title) & set(item.part)) / max(len(set(item.part)), 1),
        "title_partial_ratio": fuzz.partial_ratio(title, normalized) / 100,
        "title_part_ratio": fuzz.ratio(title, item.part) / 100,
        "title_in_text": title in normalized,
        "from_lookup": item.from_lookup,
        "neighbour_vote": item.neighbour_vote,
        "neighbour_best_similarity": item.neighbour_best,
        "table_detail": context.detailed_share,
        "meaning_text": text_cosine,
        "meaning_part": part_cosine,
        "meaning_rank": min(item.meaning_rank, MEANING_TOP) / MEANING_TOP if meaning is not None else 1.0,
    }


def feature_matrix(rows: list[dict[str, float]]) -> np.ndarray:
    """Rows by name → the ranker's column order; a name missing or unknown on either side raises."""
    for row in rows:
        if row.keys() != set(FEATURES):
            missing, unknown = set(FEATURES) - row.keys(), row.keys() - set(FEATURES)
            raise ValueError(f"evidence features do not match the ranker's: missing {missing}, unknown {unknown}")
    return np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=float).reshape(len(rows), len(FEATURES))
