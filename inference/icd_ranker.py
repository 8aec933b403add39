"""Which ICD candidates a diagnosis string really means: a logistic model over lookup evidence.

The lookup proposes candidates from several sources (table names, lexicon, learned synonyms, cues,
similar coded examples); each carries evidence (similarities, match kinds, how many parts of the string
support it, how often similar strings were given that code). The model turns that evidence into the
probability that the code is right. It is trained on CHIP-CDN train with cross-fitting (the evidence
for one half comes from what was learned on the other half), so it never sees its own synonyms as
exact matches. Plain numpy (Newton's method on L2-regularized log-loss): no extra dependency, the same
weights on every machine. The model file lives in the user data dir beside the learned synonyms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_FILE_NAME = "icd_ranker_learned.json"
MODEL_VERSION = 1

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
    "from_lookup", "neighbour_vote", "neighbour_best_similarity",
)


@dataclass(frozen=True)
class RankerModel:
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float  # probability at which a candidate is taken as a code of the string
    trained_on: str

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if features.size == 0:
            return np.zeros(0)
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path) -> None:
        data = {
            "version": MODEL_VERSION, "features": list(FEATURES), "weights": self.weights.round(6).tolist(),
            "bias": round(self.bias, 6), "mean": self.mean.round(6).tolist(), "scale": self.scale.round(6).tolist(),
            "threshold": self.threshold, "trained_on": self.trained_on,
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_model(path: Path) -> RankerModel | None:
    """The saved model, or None when absent or written for other features (the lookup then ranks by similarity)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != MODEL_VERSION or data.get("features") != list(FEATURES):
        return None
    return RankerModel(
        weights=np.array(data["weights"]), bias=float(data["bias"]), mean=np.array(data["mean"]),
        scale=np.array(data["scale"]), threshold=float(data["threshold"]), trained_on=str(data["trained_on"]),
    )


def fit(features: np.ndarray, labels: np.ndarray, trained_on: str, l2: float = 1.0) -> RankerModel:
    """Logistic regression by Newton's method on standardized features, then the F1-best threshold."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
    y = labels.astype(float)
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    model = RankerModel(w[:-1], float(w[-1]), mean, scale, 0.5, trained_on)
    return RankerModel(model.weights, model.bias, mean, scale, _best_threshold(model.probabilities(features), y), trained_on)


def _best_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Candidate-level F1 over the training candidates; positives the lookup never proposed do not move it."""
    best, best_f1 = 0.5, -1.0
    positives = labels.sum()
    for threshold in np.arange(0.20, 0.80, 0.01):
        chosen = probabilities >= threshold
        tp = float((labels * chosen).sum())
        if not chosen.any() or tp == 0:
            continue
        precision, recall = tp / chosen.sum(), tp / positives
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best, best_f1 = round(float(threshold), 2), f1
    return best
