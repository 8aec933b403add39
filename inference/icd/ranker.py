"""Which ICD candidates a diagnosis string really means: boosted trees over the lookup's evidence.

The lookup proposes candidates from several sources (table names, lexicon, learned synonyms, cues,
similar coded examples, nearest names by meaning); each carries evidence by name (``FEATURES``). The
model turns that evidence into the probability that the code is right: the one score every ICD result
carries. It is fitted at build time by scikit-learn (``inference.icd.training.ranker_training``); what
ships is its trees as JSON, evaluated here in plain numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MODEL_VERSION = 4

MATCH_KINDS = (
    "exact_name", "lexicon_synonym", "learned_synonym", "fuzzy_name", "fuzzy_lexicon", "fuzzy_synonym", "learned_cue",
)
FEATURES = (
    "similarity", "similarity_squared", "best_in_part", "rank_in_part", "gap_to_part_best", "parts_supporting",
    "cue_precision", "cue_only",
    *(f"kind_{kind}" for kind in MATCH_KINDS),
    "via_expansion", "via_qualifier_removal", "via_tumour_site",
    "category_prior", "log_parts", "subcategory_code", "unspecified_title", "title_length",
    "title_chars_in_text", "part_chars_in_title", "title_partial_ratio", "title_part_ratio", "title_in_text",
    "from_lookup", "neighbour_vote", "neighbour_best_similarity", "table_detail",
    "meaning_text", "meaning_part", "meaning_rank",
)


@dataclass(frozen=True)
class Tree:
    """Nodes in arrays: an internal node sends x[feature] <= threshold left; a leaf has feature -1."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        return {"feature": self.feature.tolist(), "threshold": self.threshold.tolist(),
                "left": self.left.tolist(), "right": self.right.tolist(), "value": self.value.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Tree:
        return cls(np.array(data["feature"], dtype=int), np.array(data["threshold"], dtype=float),
                   np.array(data["left"], dtype=int), np.array(data["right"], dtype=int),
                   np.array(data["value"], dtype=float))


@dataclass(frozen=True)
class RankerModel:
    base: float  # log-odds before the trees
    trees: tuple[Tree, ...]
    threshold: float  # probability at which a candidate is taken as a code of the string
    trained_on: str

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if features.size == 0 or not self.trees:
            return np.full(len(features), 1.0 / (1.0 + np.exp(-self.base)))
        feature, threshold, left, right, value = self._forest
        trees = np.arange(len(self.trees))[None, :]
        samples = np.arange(len(features))[:, None]
        node = np.zeros((len(features), len(self.trees)), dtype=int)
        for _ in range(self._depth):  # every tree at once; a leaf points to itself
            goes_left = features[samples, feature[trees, node]] <= threshold[trees, node]
            node = np.where(goes_left, left[trees, node], right[trees, node])
        return 1.0 / (1.0 + np.exp(-(self.base + value[trees, node].sum(axis=1))))

    @cached_property
    def _depth(self) -> int:
        def depth(tree: Tree, node: int) -> int:
            if tree.feature[node] < 0:
                return 0
            return 1 + max(depth(tree, tree.left[node]), depth(tree, tree.right[node]))

        return max(depth(tree, 0) for tree in self.trees)

    @cached_property
    def _forest(self) -> tuple[np.ndarray, ...]:
        """The trees padded into (tree, node) arrays so that a batch of candidates goes through all at once."""
        width = max(len(tree.feature) for tree in self.trees)
        feature = np.zeros((len(self.trees), width), dtype=int)
        threshold = np.full((len(self.trees), width), np.inf)
        left = np.tile(np.arange(width), (len(self.trees), 1))
        right, value = left.copy(), np.zeros((len(self.trees), width))
        for t, tree in enumerate(self.trees):
            n, inner = len(tree.feature), tree.feature >= 0
            feature[t, :n][inner] = tree.feature[inner]
            threshold[t, :n][inner] = tree.threshold[inner]
            left[t, :n][inner] = tree.left[inner]
            right[t, :n][inner] = tree.right[inner]
            value[t, :n] = tree.value
        return feature, threshold, left, right, value

    def save(self, path: Path) -> None:
        data = {
            "version": MODEL_VERSION, "features": list(FEATURES), "base": self.base,
            "threshold": self.threshold, "trained_on": self.trained_on, "trees": [t.as_dict() for t in self.trees],
        }
        path.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def load_model(path: Path) -> RankerModel | None:
    """The saved model, or None when absent, unreadable or written for other features (the lookup then
    ranks by similarity)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != MODEL_VERSION or data.get("features") != list(FEATURES):
            return None
        trees = tuple(Tree.from_dict(t) for t in data["trees"])
        if not all(_well_formed(tree) for tree in trees):
            return None
        return RankerModel(float(data["base"]), trees, float(data["threshold"]), str(data["trained_on"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _well_formed(tree: Tree) -> bool:
    """Arrays of one length, features that exist, children that exist and come after their parent (so no
    cycle): a damaged file must not crash or hang a lookup."""
    n = len(tree.feature)
    inner = tree.feature >= 0
    after = np.arange(n)[inner]
    return (
        n > 0 and all(len(a) == n for a in (tree.threshold, tree.left, tree.right, tree.value))
        and bool((tree.feature < len(FEATURES)).all())
        and bool(((tree.left[inner] > after) & (tree.left[inner] < n) & (tree.right[inner] > after)
                  & (tree.right[inner] < n)).all())
    )
