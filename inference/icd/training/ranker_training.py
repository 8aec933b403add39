"""Fit the ranker with scikit-learn's HistGradientBoostingClassifier (the ``learn`` extra) and export its
trees into the runtime's numpy predictor (``inference.icd.ranker``), which needs no scikit-learn.

The export is checked: the exported model must give the classifier's own probabilities on the training
rows, or the build fails.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from inference.icd.ranker import FEATURES, RankerModel, Tree

TREES = 200
DEPTH = 4
LEARNING_RATE = 0.1
L2 = 1.0
MIN_SAMPLES_LEAF = 20
MAX_BINS = 32
SEED = 0


def fit(features: np.ndarray, labels: np.ndarray, trained_on: str) -> RankerModel:
    """Boosted trees on log-loss, then the threshold with the best F1 over the training candidates."""
    if features.shape[1] != len(FEATURES):
        raise ValueError(f"{features.shape[1]} feature columns for {len(FEATURES)} features")
    classifier = HistGradientBoostingClassifier(
        max_iter=TREES, max_depth=DEPTH, learning_rate=LEARNING_RATE, l2_regularization=L2,
        min_samples_leaf=MIN_SAMPLES_LEAF, max_bins=MAX_BINS, early_stopping=False, random_state=SEED,
    ).fit(features, labels.astype(int))
    trees = tuple(_tree(predictors[0].nodes) for predictors in classifier._predictors)
    model = RankerModel(float(np.ravel(classifier._baseline_prediction)[0]), trees, 0.5, trained_on)
    exported, own = model.probabilities(features), classifier.predict_proba(features)[:, 1]
    if not np.allclose(exported, own, atol=1e-9):
        raise ValueError(f"exported trees disagree with the classifier (max {np.abs(exported - own).max():.2e})")
    return RankerModel(model.base, trees, _best_threshold(exported, labels.astype(float)), trained_on)


def _tree(nodes: np.ndarray) -> Tree:
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        feature=np.where(leaf, -1, nodes["feature_idx"]).astype(int),
        threshold=np.where(leaf, 0.0, nodes["num_threshold"]).astype(float),
        left=np.where(leaf, -1, nodes["left"]).astype(int),
        right=np.where(leaf, -1, nodes["right"]).astype(int),
        value=np.where(leaf, nodes["value"], 0.0).astype(float),
    )


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
