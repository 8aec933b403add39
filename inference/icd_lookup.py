"""``get_icd_code``: hospital diagnosis wording → ranked ICD-10 candidates from the active table.

Matching runs on a normalized form (NFKC, no spaces, Latin upper-case) after expanding non-standard
forms (心梗 → 心肌梗死, COPD → 慢性阻塞性肺疾病). Sources, best first: an exact table name, an exact
learned synonym (CHIP-CDN train), then character n-gram TF-IDF over names and synonyms reranked with
rapidfuzz. Every candidate code exists in the active table — a learned code from another edition is
mapped to its closest existing code (itself, its subcategory or its category) or dropped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
from rapidfuzz import fuzz

from inference.clinical_terms import expand_terms
from inference.icd_synonyms import load_cues, load_learned, normalize_text, split_segments
from inference.icd_table import IcdTable, open_table

# Hedges and work-up wording that do not change the diagnosis being coded.
_HEDGES = re.compile(r"(待查|待排|可能性大|可能|考虑|疑似|不除外|\?|？|原因待查|史$)")
_LATERALITY = re.compile(r"^(双侧|左侧|右侧|两侧|双|左|右)")
_PARENTHESES = re.compile(r"[(（][^)）]*[)）]")
# Tumour wording: "左下肺腺癌" is coded by site as "…恶性肿瘤" (plus a morphology code, see cues).
_TUMOUR_GRADE = re.compile(r"(高|中|低|中-低|中低|高-中)分化|浸润性|周围型|中央型|原发性")
_TUMOUR_MORPHOLOGY = re.compile(r"(腺鳞癌|鳞状细胞癌|鳞癌|腺癌|小细胞癌|导管癌|乳头状癌|未分化癌|肉瘤|癌)")
_STAGING = re.compile(r"([CP]?T[0-9XIS][A-C]?N[0-9X][A-C]?M[0-9X][A-C]?|[IV]+[A-C]?期|广泛期|局限期|晚期|早期|根治术后|术后)")
_UNSPECIFIED = re.compile(r"^未特指的|[，,]\s*未特指的?$")
_RETRIEVE = 40
_MIN_SCORE = 0.35


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
    from inference.paths import resources_dir
    from inference.tsv_files import read_tsv

    return [(clinical, title) for clinical, title in read_tsv(resources_dir() / "terms" / "lookup_synonyms.tsv", 2)]


def _common_suffix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _features(text: str) -> dict[str, float]:
    features: dict[str, float] = defaultdict(float)
    for char in text:
        features[char] += 0.5
    for i in range(len(text) - 1):
        features[text[i:i + 2]] += 1.0
    return features


class IcdMatcher:
    def __init__(self, table: IcdTable, use_learned: bool = True) -> None:
        self.table = table
        self._docs: list[_Doc] = []
        self._exact: dict[str, list[int]] = defaultdict(list)
        by_title: dict[str, list[str]] = defaultdict(list)
        for entry in table.lookup_entries():
            self._add(_Doc(normalize_text(entry.name), entry.code, entry.name, "name", 1.0))
            by_title[entry.name].append(entry.code)
            core = _UNSPECIFIED.sub("", entry.name)  # WHO titles: "未特指的肺炎" is what doctors call 肺炎
            if core != entry.name and len(core) >= 2:
                self._add(_Doc(normalize_text(core), entry.code, entry.name, "alias", 1.0))
        for clinical, title in _lookup_synonyms():
            for code in by_title.get(title, []):
                self._add(_Doc(normalize_text(clinical), code, title, "alias", 1.0))
        if use_learned:
            for alias, synonyms in load_learned().items():
                total = sum(s.count for s in synonyms)
                for synonym in synonyms:
                    existing = table.closest_existing(synonym.code)
                    if existing is None:
                        continue
                    name = synonym.term if existing.code == synonym.code else existing.name
                    self._add(_Doc(alias, existing.code, name, "synonym", synonym.count / total))
        self._cues = load_cues() if use_learned else {}
        self._vocabulary = {doc.text for doc in self._docs if len(doc.text) >= 2}
        self._build_index()

    def _add(self, doc: _Doc) -> None:
        self._exact[doc.text].append(len(self._docs))
        self._docs.append(doc)

    def _build_index(self) -> None:
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for doc_id, doc in enumerate(self._docs):
            for feature, tf in _features(doc.text).items():
                postings[feature].append((doc_id, tf))
        n_docs = len(self._docs)
        self._idf = {f: math.log(1 + n_docs / len(p)) for f, p in postings.items()}
        norms = np.zeros(n_docs)
        for feature, plist in postings.items():
            idf = self._idf[feature]
            for doc_id, tf in plist:
                norms[doc_id] += (tf * idf) ** 2
        norms = np.sqrt(np.maximum(norms, 1e-12))
        self._postings = {
            feature: (
                np.fromiter((d for d, _ in plist), dtype=np.int32, count=len(plist)),
                np.fromiter((tf * self._idf[feature] / norms[d] for d, tf in plist), dtype=np.float32, count=len(plist)),
            )
            for feature, plist in postings.items()
        }
        self._n_docs = n_docs

    # -- single diagnosis -------------------------------------------------------------------------

    def lookup(self, disease_name: str, top_k: int = 5) -> list[Candidate]:
        """Ranked candidates for one diagnosis (several diagnoses in one string: use ``lookup_all``)."""
        scored: dict[str, Candidate] = {}
        for variant, note in self._variants(disease_name):
            for candidate in self._match(variant, note):
                best = scored.get(candidate.code)
                if best is None or candidate.score > best.score:
                    scored[candidate.code] = candidate
        ranked = sorted(scored.values(), key=lambda c: (-c.score, len(c.code), c.code))
        return [c for c in ranked if c.score >= _MIN_SCORE][:top_k]

    def _variants(self, raw: str) -> list[tuple[str, str]]:
        text = normalize_text(raw)
        variants = [(text, "")]
        expanded = normalize_text(expand_terms(unicodedata.normalize("NFKC", raw)))
        if expanded != text:
            variants.append((expanded, f"expanded:{expanded}"))
        for base, note in list(variants):
            stripped = _LATERALITY.sub("", _HEDGES.sub("", _PARENTHESES.sub("", base)))
            if stripped and stripped != base:
                variants.append((stripped, (note + " " if note else "") + "qualifiers_removed"))
        if _TUMOUR_MORPHOLOGY.search(text):
            site = _TUMOUR_MORPHOLOGY.split(_STAGING.sub("", _TUMOUR_GRADE.sub("", _HEDGES.sub("", text))))[0]
            if site:
                variants.append((site + "恶性肿瘤", "tumour_site"))
        return variants

    def _match(self, text: str, note: str) -> list[Candidate]:
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
        query = _features(text)
        weights = {f: tf * self._idf[f] for f, tf in query.items() if f in self._idf}
        if not weights:
            return []
        norm = math.sqrt(sum(w * w for w in weights.values()))
        scores = np.zeros(self._n_docs, dtype=np.float32)
        for feature, weight in weights.items():
            doc_ids, doc_weights = self._postings[feature]
            scores[doc_ids] += doc_weights * (weight / norm)
        top = np.argpartition(-scores, min(_RETRIEVE, self._n_docs - 1))[:_RETRIEVE]
        candidates = []
        for doc_id in top:
            cosine = float(scores[doc_id])
            if cosine <= 0:
                continue
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

    # -- several diagnoses in one string ----------------------------------------------------------

    def split_diagnoses(self, text: str) -> list[str]:
        """Punctuation first; then a segment made of several known terms (高血压冠心病) is split on them."""
        parts: list[str] = []
        for segment in split_segments(normalize_text(text)):
            for piece in re.split(r"(?<=.)(?:伴|合并|并发|并)(?=.)", segment):
                parts.extend(self._split_known_terms(piece))
        return [p for p in parts if p]

    def _split_known_terms(self, segment: str) -> list[str]:
        if segment in self._exact or len(segment) < 4:
            return [segment]
        n = len(segment)
        # best[i] = (covered chars, -pieces, cut points) for segment[:i]
        best: list[tuple[int, int, list[int]]] = [(0, 0, [])] + [(-1, 0, [])] * n
        for end in range(1, n + 1):
            covered, pieces, cuts = best[end - 1]
            best[end] = (covered, pieces, cuts)
            for start in range(max(0, end - 24), end - 1):
                if best[start][0] < 0:
                    continue
                word = segment[start:end]
                if word in self._vocabulary or expand_terms(word) != word:
                    option = (best[start][0] + len(word), best[start][1] - 1, best[start][2] + [start, end])
                    if option[:2] > best[end][:2]:
                        best[end] = option
        covered, pieces, cuts = best[n]
        if -pieces < 2 or covered < 0.5 * n:
            return [segment]
        bounds = sorted(set([0, *cuts, n]))
        words = [segment[a:b] for a, b in zip(bounds, bounds[1:])]
        merged: list[str] = []
        carry = ""
        for word in words:  # short unknown fragments are qualifiers (急性, 左侧): glue them to the next term
            known = word in self._vocabulary or expand_terms(word) != word
            if not known and len(word) <= 2:
                carry += word
                continue
            merged.append(carry + word)
            carry = ""
        if carry:
            if merged:
                merged[-1] += carry
            else:
                merged.append(carry)
        return merged if len(merged) > 1 else [segment]

    def lookup_all(self, text: str, top_k: int = 5) -> list[tuple[str, list[Candidate]]]:
        return [(part, self.lookup(part, top_k)) for part in self.split_diagnoses(text)]

    def implied_codes(self, text: str) -> list[Candidate]:
        """Codes the wording implies without naming them (…鳞癌 → 鳞状细胞癌 morphology), learned as cues."""
        normalized = normalize_text(text)
        found: dict[str, Candidate] = {}
        for cue, cues in self._cues.items():
            if cue not in normalized:
                continue
            for learned in cues:
                existing = self.table.closest_existing(learned.code)
                if existing is None:
                    continue
                name = learned.term if existing.code == learned.code else existing.name
                if name not in found or found[name].score < learned.precision:
                    found[name] = Candidate(existing.code, name, learned.precision * 0.9, f"learned_cue (via {cue})")
        return sorted(found.values(), key=lambda c: -c.score)


_matcher_cache: dict[tuple[str, str, str], IcdMatcher] = {}


def matcher_for(table: IcdTable) -> IcdMatcher:
    """Built once per table and learned-synonym file (about a second for 40k names), then shared."""
    from inference.icd_synonyms import learned_path

    key = (table.info.name, table.info.sha256, str(learned_path()))
    if key not in _matcher_cache:
        _matcher_cache[key] = IcdMatcher(table)
    return _matcher_cache[key]


def get_icd_code(disease_name: str, table: IcdTable | None = None, top_k: int = 5) -> list[dict[str, str | float]]:
    """The function the model calls: 根据疾病名称查询对应的ICD-10编码."""
    table = table or open_table()
    return [candidate.as_dict() for candidate in matcher_for(table).lookup(disease_name, top_k)]
