"""Candidate retrieval: which table names, lexicon aliases and learned synonyms a wording matches, exactly
or by character n-gram TF-IDF reranked with rapidfuzz. Every candidate code exists in the active table."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
from rapidfuzz import fuzz

from inference.icd.learned import LearnedData, normalize_text
from inference.icd.table import IcdTable
from inference.icd.wording import UNSPECIFIED
from inference.paths import resources_dir
from inference.tsv_files import read_tsv

_RETRIEVE = 40


@dataclass(frozen=True)
class Candidate:
    code: str
    name: str
    score: float
    match: str  # why it matched: exact_name | learned_synonym | fuzzy_name | fuzzy_synonym, plus expansions

    def as_dict(self) -> dict[str, str | float]:
        data = asdict(self)
        data["score"] = round(self.score, 3)
        return data


@dataclass(frozen=True)
class _Doc:
    text: str
    code: str
    name: str
    kind: str  # "name" (a table title) | "alias" (lexicon, title variant) | "synonym" (learned from CHIP-CDN)
    weight: float


def _lookup_synonyms() -> list[tuple[str, str]]:
    return [(clinical, title) for clinical, title in read_tsv(resources_dir() / "terms" / "lookup_synonyms.tsv", 2)]


def _common_suffix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _grams(text: str) -> dict[str, float]:
    grams: dict[str, float] = defaultdict(float)
    for char in text:
        grams[char] += 0.5
    for i in range(len(text) - 1):
        grams[text[i:i + 2]] += 1.0
    return grams


class NgramIndex:
    """Cosine similarity of character uni/bigram TF-IDF vectors, searched through posting lists.

    The postings are two flat arrays sorted by feature (doc ids and normalised weights) with each feature's
    start offset, built with numpy: a 40k-name table indexes in well under a second."""

    def __init__(self, texts: list[str]) -> None:
        numbering: defaultdict[str, int] = defaultdict()
        numbering.default_factory = numbering.__len__  # a new feature gets the next id
        doc_ids: list[int] = []
        feature_ids: list[int] = []
        counts: list[float] = []
        for doc_id, text in enumerate(texts):
            grams = _grams(text)
            feature_ids.extend(map(numbering.__getitem__, grams))
            counts.extend(grams.values())
            doc_ids.extend([doc_id] * len(grams))
        self._feature_ids = dict(numbering)  # a plain dict: looking up a query's features must not add any
        self.size = len(texts)
        docs = np.array(doc_ids, dtype=np.int32)
        features = np.array(feature_ids, dtype=np.int32)
        frequency = np.bincount(features, minlength=len(self._feature_ids))
        idf = np.log1p(self.size / np.maximum(frequency, 1))
        weights = np.array(counts) * idf[features]
        norms = np.sqrt(np.maximum(np.bincount(docs, weights=weights**2, minlength=self.size), 1e-12))
        order = np.argsort(features, kind="stable")  # by feature, doc order kept within one
        self._docs = docs[order]
        self._weights = (weights / norms[docs])[order].astype(np.float32)
        self._starts = np.concatenate([[0], np.cumsum(frequency)]).tolist()
        self._idf = idf.tolist()

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        weights: dict[int, float] = {}
        for feature, tf in _grams(text).items():
            feature_id = self._feature_ids.get(feature)
            if feature_id is not None:
                weights[feature_id] = tf * self._idf[feature_id]
        if not weights or not self.size:
            return []
        norm = math.sqrt(sum(w * w for w in weights.values()))
        scores = np.zeros(self.size, dtype=np.float32)
        for feature_id, weight in weights.items():
            start, stop = self._starts[feature_id], self._starts[feature_id + 1]
            scores[self._docs[start:stop]] += self._weights[start:stop] * (weight / norm)
        top = np.argpartition(-scores, min(k, self.size - 1))[:k]
        return sorted(((int(i), float(scores[i])) for i in top if scores[i] > 0), key=lambda hit: -hit[1])


class NameIndex:
    """Every wording that names a code of the table: its titles (and their 未特指 cores), the hand lexicon's
    clinical names and the learned synonyms, mapped to the closest code the table has."""

    def __init__(self, table: IcdTable, learned: LearnedData) -> None:
        self.table = table
        self._docs: list[_Doc] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        by_title: dict[str, list[str]] = defaultdict(list)
        for entry in table.lookup_entries():
            self._add(_Doc(normalize_text(entry.name), entry.code, entry.name, "name", 1.0))
            by_title[entry.name].append(entry.code)
            core = UNSPECIFIED.sub("", entry.name)
            if core != entry.name and len(core) >= 2:
                self._add(_Doc(normalize_text(core), entry.code, entry.name, "alias", 1.0))
        for clinical, title in _lookup_synonyms():
            for code in by_title.get(title, []):
                self._add(_Doc(normalize_text(clinical), code, title, "alias", 1.0))
        for alias, synonyms in learned.synonyms.items():
            total = sum(s.count for s in synonyms)
            for synonym in synonyms:
                existing = table.closest_existing(synonym.code)
                if existing is None or any(
                    self._docs[i].kind == "name" and self._docs[i].code == existing.code for i in self._exact.get(alias, [])
                ):
                    continue  # not in this table, or already one of its names
                name = synonym.term if existing.code == synonym.code else existing.name
                self._add(_Doc(alias, existing.code, name, "synonym", synonym.count / total))
        self.vocabulary = {doc.text for doc in self._docs if len(doc.text) >= 2}
        self._index = NgramIndex([doc.text for doc in self._docs])

    def _add(self, doc: _Doc) -> None:
        self._exact[doc.text].append(len(self._docs))
        self._docs.append(doc)

    def texts(self) -> list[str]:
        return [doc.text for doc in self._docs]

    def match(self, text: str, note: str) -> list[Candidate]:
        """Exact matches first, then the fuzzy ones; a derived variant (``note``) scores a little lower."""
        if not text:
            return []
        exact = self._exact.get(text)
        penalty = 0.97 if note else 1.0
        exact_labels = {"name": "exact_name", "alias": "lexicon_synonym", "synonym": "learned_synonym"}
        found = [
            self._candidate(self._docs[i], (1.0 if self._docs[i].kind == "name" else 0.95) * penalty,
                            exact_labels[self._docs[i].kind], note)
            for i in exact or []
        ]
        return found + self._fuzzy(text, note, penalty)

    def _fuzzy(self, text: str, note: str, penalty: float) -> list[Candidate]:
        candidates = []
        for doc_id, cosine in self._index.search(text, _RETRIEVE):
            doc = self._docs[doc_id]
            similarity = 0.55 * cosine + 0.45 * fuzz.ratio(text, doc.text) / 100
            if doc.text in text or text in doc.text:
                similarity += 0.1 * min(len(doc.text), len(text)) / max(len(doc.text), len(text))
            # Chinese diagnoses put the disease head last (…性心脏病, …肺疾病): agreeing heads count.
            similarity += 0.08 * min(_common_suffix(text, doc.text), 4) / 4
            if doc.kind == "synonym":
                similarity *= 0.97
            kind = {"name": "fuzzy_name", "alias": "fuzzy_lexicon", "synonym": "fuzzy_synonym"}[doc.kind]
            candidates.append(self._candidate(doc, min(similarity, 0.94) * penalty, kind, note))
        return candidates

    def _candidate(self, doc: _Doc, score: float, kind: str, note: str) -> Candidate:
        entry = self.table.get(doc.code)
        name = doc.name if doc.kind == "name" or entry is None else entry.name
        match = kind + (f" ({note}; via {doc.text})" if note else f" (via {doc.text})" if doc.kind != "name" else "")
        return Candidate(code=doc.code, name=name, score=score, match=match)
