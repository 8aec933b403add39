"""Hospital diagnosis wording → ranked ICD-10 candidates from a code table (what the model's ``get_icd_code``
calls answer, in ``icd_coding``).

Matching runs on a normalized form (NFKC, no spaces, Latin upper-case) after expanding non-standard
forms (心梗 → 心肌梗死, COPD → 慢性阻塞性肺疾病). Sources: an exact table name, an exact learned synonym
(CHIP-CDN train), character n-gram TF-IDF over names and synonyms reranked with rapidfuzz, learned cues,
the codes of the most similar coded examples, and the names nearest in meaning by the learned text encoder
(``icd_encoder``). When a ranker has been learned (``icd_ranker``) it turns
that evidence into a probability per code; without one, candidates rank by similarity. Every candidate
code exists in the active table — a learned code from another edition is mapped to its closest existing
code (itself, its subcategory or its category) or dropped.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
from rapidfuzz import fuzz

from inference.checks.clinical_terms import expand_terms
from inference.icd.ranker import FEATURES, MATCH_KINDS, MODEL_FILE_NAME, RankerModel, load_model
from inference.icd.synonyms import LearnedData, fragments, load_learned, normalize_text, split_segments
from inference.icd.table import IcdEntry, IcdTable

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
_PART_TOP = 10  # candidates per part handed to the ranker
_NEIGHBOURS = 10
_NEIGHBOUR_MIN_SIMILARITY = 0.2
# The longest diagnosis string in CHIP-CDN (8,000 real ones) has 103 characters; a 10,000-character query took
# 78 s. Longer input is not a diagnosis and gets no candidates.
MAX_QUERY_CHARS = 200
_CJK = re.compile(r"[\u3400-\u9fff]")


def _latin_words(normalized: str) -> list[str]:
    return [word for word in re.findall(r"[A-Z0-9]+", normalized) if len(word) >= 2 and not word.isdigit()]
_MIN_PROBABILITY = 0.01  # below this a ranked candidate is not worth offering as an alternative
_MIN_MEANING_ONLY_PROBABILITY = 0.05  # … and below this when only the encoder proposed it (any text has neighbours)
_MIN_SOLE_PROBABILITY = 0.2  # with a ranker: no candidate clears the threshold, the best is coded from this
_MIN_CODED_SCORE = 0.5  # without a ranker: similarity a part's best candidate needs to be coded
_MEANING_TOP = 5  # names nearest in the learned encoder's space offered for the whole string
_MEANING_PART_TOP = 3  # … and for each part


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


class _NgramIndex:
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
            features = _features(text)
            feature_ids.extend(map(numbering.__getitem__, features))
            counts.extend(features.values())
            doc_ids.extend([doc_id] * len(features))
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
        for feature, tf in _features(text).items():
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


@dataclass
class _Evidence:
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


class IcdMatcher:
    def __init__(self, table: IcdTable, learned: LearnedData | None = None, ranker: RankerModel | None = None) -> None:
        """``learned`` None: the learned files (and, unless given, the ranker) in the data dir;
        ``LearnedData()``: no learning."""
        if learned is None:
            from inference.paths import data_dir

            learned = load_learned()
            ranker = ranker or load_model(data_dir() / MODEL_FILE_NAME)
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
        self._cues = learned.cues
        # Abbreviations as whole words in the names, synonyms and coded examples (COPD, AECOPD, HIV).
        self._latin_words = {word for doc in self._docs for word in _latin_words(doc.text)} | {
            word for example in learned.examples for word in _latin_words(normalize_text(example.text))}
        self._vocabulary = {doc.text for doc in self._docs if len(doc.text) >= 2}
        self._index = _NgramIndex([doc.text for doc in self._docs])
        self._examples = [
            (example.text, list(dict.fromkeys(entry.code for entry in map(table.closest_existing, example.codes) if entry)))
            for example in learned.examples
        ]
        self._example_index = _NgramIndex([text for text, _ in self._examples])
        self._category_prior: dict[str, int] = defaultdict(int)
        for _text, codes in self._examples:
            for category in {code[:3] for code in codes}:
                self._category_prior[category] += 1
        # The ranker weighs the encoder's similarities; without the encoder it would misjudge every candidate.
        self.ranker = ranker if learned.encoder is not None else None
        # Hospital editions extend WHO codes (I50.900x018); how detailed the table is changes what a good candidate looks like.
        entries = table.lookup_entries()
        self._detailed_share = sum(len(entry.code) > 5 for entry in entries) / max(len(entries), 1)
        self._encoder = learned.encoder
        named: dict[str, IcdEntry] = {}  # one row per distinct name, for the encoder's nearest names
        for entry in entries:
            named.setdefault(normalize_text(entry.name), entry)
        self._named = list(named.values())
        self._name_row = {text: row for row, text in enumerate(named)}
        self._name_vectors = self._encoder.encode(list(named)) if self._encoder else None

    def _add(self, doc: _Doc) -> None:
        self._exact[doc.text].append(len(self._docs))
        self._docs.append(doc)

    # -- single diagnosis -------------------------------------------------------------------------

    def means_nothing(self, text: str) -> bool:
        """Not a diagnosis string at all: longer than any diagnosis line, or without a Chinese character and
        without a known abbreviation as a whole word (COPD is one; the CO inside "codes" is not)."""
        if len(text) > MAX_QUERY_CHARS:
            return True
        if _CJK.search(text) or _CJK.search(expand_terms(unicodedata.normalize("NFKC", text))):
            return False
        return not any(word in self._latin_words for word in _latin_words(normalize_text(text)))

    def lookup(self, disease_name: str, top_k: int = 5) -> list[Candidate]:
        """Ranked candidates for a diagnosis string: by the learned ranker's probability when there is one
        (the string's parts, cues and similar examples all count), else by similarity."""
        if self.means_nothing(disease_name):
            return []
        if self.ranker is None:
            return self._lookup_part(disease_name, top_k)
        offered = [
            c for c in self._ranked(disease_name, self.ranker)
            if c.score >= (_MIN_MEANING_ONLY_PROBABILITY if c.match.startswith("similar_meaning") else _MIN_PROBABILITY)
        ]
        return offered[:top_k]

    def codes(self, text: str) -> list[Candidate]:
        """The codes a diagnosis string means (possibly several): what is coded without a doctor choosing."""
        if self.means_nothing(text):
            return []
        if self.ranker is not None:
            ranked = self._ranked(text, self.ranker)
            chosen = [c for c in ranked if c.score >= self.ranker.threshold]
            if not chosen and ranked and ranked[0].score >= _MIN_SOLE_PROBABILITY:
                chosen = ranked[:1]  # a diagnosis string means some code: its likeliest one, shown with its score
            return chosen
        chosen: list[Candidate] = []
        for _part, candidates in self.lookup_all(text, top_k=8):
            if not candidates or candidates[0].score < _MIN_CODED_SCORE:
                continue
            top = candidates[0]
            chosen.append(top)
            if top.match.startswith("learned_synonym"):  # one learned wording can stand for several terms
                chosen += [c for c in candidates[1:] if c.match.startswith("learned_synonym") and c.score >= top.score]
        names = {c.name for c in chosen}
        return chosen + [c for c in self.implied_codes(text) if c.name not in names]

    def _ranked(self, text: str, ranker: RankerModel) -> list[Candidate]:
        evidence, features = self.evidence(text)
        probabilities = ranker.probabilities(features)
        by_name: dict[str, Candidate] = {}
        for item, probability in zip(evidence, probabilities):
            found = item.candidate
            other = by_name.get(found.name)
            if other is None or probability > other.score:
                # One name listed under a category and under its leaf (C67 / C67.901 膀胱恶性肿瘤): code the leaf.
                code = found.code if other is None or len(found.code) >= len(other.code) else other.code
                by_name[found.name] = Candidate(code, found.name, float(probability), found.match)
            elif len(found.code) > len(other.code):
                by_name[found.name] = Candidate(found.code, other.name, other.score, other.match)
        return sorted(by_name.values(), key=lambda c: (-c.score, len(c.code), c.code))

    def _lookup_part(self, disease_name: str, top_k: int) -> list[Candidate]:
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
        """Each part of the string with its candidates by similarity (the evidence the ranker weighs)."""
        if self.means_nothing(text):
            return []
        return [(part, self._lookup_part(part, top_k)) for part in self.split_diagnoses(text)]

    def implied_codes(self, text: str) -> list[Candidate]:
        """Codes the wording implies without naming them (…鳞癌 → 鳞状细胞癌 morphology), learned as cues."""
        normalized = normalize_text(text)
        found: dict[str, Candidate] = {}
        for cue in sorted(fragments(normalized) & self._cues.keys()):
            for learned in self._cues[cue]:
                existing = self.table.closest_existing(learned.code)
                if existing is None:
                    continue
                name = learned.term if existing.code == learned.code else existing.name
                if name not in found or found[name].score < learned.precision:
                    found[name] = Candidate(existing.code, name, learned.precision * 0.9, f"learned_cue (via {cue})")
        return sorted(found.values(), key=lambda c: -c.score)

    # -- evidence for the ranker ------------------------------------------------------------------

    def evidence(self, text: str) -> tuple[list[_Evidence], np.ndarray]:
        """Every candidate code for a diagnosis string with what supports it, and the ranker's features."""
        found: dict[str, _Evidence] = {}
        normalized = normalize_text(text)
        parts = self.lookup_all(text, top_k=_PART_TOP)
        n_parts = len(parts)
        split = {part for part, _ in parts}
        # An unsplit segment can be a learned wording as a whole (胃溃疡伴出血): its matches count too.
        parts += [(s, self._lookup_part(s, _PART_TOP)) for s in split_segments(normalized) if s not in split]
        for part, candidates in parts:
            best = candidates[0].score if candidates else 0.0
            for rank, candidate in enumerate(candidates):
                item = found.setdefault(candidate.code, _Evidence(candidate, part))
                item.parts += 1
                item.from_lookup = True
                if candidate.score >= item.candidate.score:
                    item.candidate, item.part, item.gap = candidate, part, best - candidate.score
                item.rank = min(item.rank, rank)
        for candidate in self.implied_codes(text):
            item = found.setdefault(candidate.code, _Evidence(candidate, text))
            item.cue = max(item.cue, candidate.score)
        hits = self._example_index.search(normalized, _NEIGHBOURS)
        total = sum(similarity for _, similarity in hits) or 1.0
        for example_id, similarity in hits:
            example_text, codes = self._examples[example_id]
            for code in codes:
                item = found.get(code)
                if item is None:
                    if similarity < _NEIGHBOUR_MIN_SIMILARITY:
                        continue
                    entry = self.table.get(code)
                    match = f"similar_example (via {example_text})"
                    item = found[code] = _Evidence(Candidate(code, entry.name if entry else code, 0.0, match), text)
                item.neighbour_vote += similarity / total
                item.neighbour_best = max(item.neighbour_best, similarity)
        meaning = self._meaning_evidence(found, normalized, [part for part, _ in parts], text)
        items = list(found.values())
        return items, self._feature_matrix(items, normalized, n_parts, meaning)

    def _meaning_evidence(
        self, found: dict[str, _Evidence], normalized: str, parts: list[str], raw: str
    ) -> dict[str, np.ndarray] | None:
        """Names nearest in meaning to the string and to each part join the candidates; returns the
        vectors of every text an item's ``part`` can be for the features (None without an encoder)."""
        if self._name_vectors is None or not len(self._name_vectors):
            return None
        texts = list(dict.fromkeys([normalized, *parts]))
        # Cue and example items carry the string as given (the ranker learned them so): encoded in the same call.
        encoded = self._encoder.encode(texts + ([raw] if raw not in texts else []))
        similarities = self._name_vectors @ encoded[: len(texts)].T  # names × texts
        top = min(_MEANING_TOP, len(self._named))
        nearest = np.argpartition(-similarities, top - 1, axis=0)[:top]
        for column, text in enumerate(texts):
            rows = sorted(nearest[:, column], key=lambda r: -similarities[r, column])
            for rank, row in enumerate(rows[: _MEANING_TOP if column == 0 else _MEANING_PART_TOP]):
                entry = self._named[row]
                item = found.get(entry.code)
                if item is None:
                    match = f"similar_meaning ({similarities[row, column]:.2f})"
                    item = found[entry.code] = _Evidence(Candidate(entry.code, entry.name, 0.0, match), text)
                item.meaning_rank = min(item.meaning_rank, rank)
        return dict(zip([*texts, raw], encoded))

    def _name_vector(self, name: str) -> np.ndarray:
        row = self._name_row.get(name)
        return self._name_vectors[row] if row is not None else self._encoder.encode([name])[0]

    def _feature_matrix(
        self, evidence: list[_Evidence], normalized: str, n_parts: int, meaning: dict[str, np.ndarray] | None
    ) -> np.ndarray:
        rows = []
        for item in evidence:
            candidate = item.candidate
            kind = candidate.match.split(" ")[0]
            title = normalize_text(candidate.name)
            score = candidate.score if item.from_lookup else 0.0
            row = [
                score, score * score, item.rank == 0, min(item.rank, 10) / 10, item.gap, item.parts,
                item.cue, item.cue > 0 and not item.from_lookup,
                *(item.from_lookup and kind == k for k in MATCH_KINDS),
                "expanded:" in candidate.match, "qualifiers_removed" in candidate.match, "tumour_site" in candidate.match,
                math.log1p(self._category_prior.get(candidate.code[:3], 0)), math.log1p(n_parts),
                len(candidate.code.replace(".", "")) > 3, "未特指" in candidate.name, min(len(title), 20) / 20,
                len(set(title) & set(normalized)) / max(len(set(title)), 1),
                len(set(title) & set(item.part)) / max(len(set(item.part)), 1),
                fuzz.partial_ratio(title, normalized) / 100, fuzz.ratio(title, item.part) / 100, title in normalized,
                item.from_lookup, item.neighbour_vote, item.neighbour_best, self._detailed_share,
                *self._meaning_features(item, title, normalized, meaning),
            ]
            rows.append(row)
        return np.array(rows, dtype=float).reshape(len(rows), len(FEATURES))

    def _meaning_features(
        self, item: _Evidence, title: str, normalized: str, meaning: dict[str, np.ndarray] | None
    ) -> tuple[float, float, float]:
        if meaning is None:
            return (-1.0, -1.0, 1.0)  # no encoder: a value no learned cosine takes
        name = self._name_vector(title)
        return (float(name @ meaning[normalized]), float(name @ meaning[item.part]),
                min(item.meaning_rank, _MEANING_TOP) / _MEANING_TOP)


_matcher_cache: dict[tuple[str, str, str], IcdMatcher] = {}
_matcher_lock = threading.Lock()  # the engine's worker and the desktop's background threads share the cache


def matcher_for(table: IcdTable) -> IcdMatcher:
    """Built once per table and data dir (about a second for 40k names), then shared."""
    from inference.paths import data_dir

    key = (table.info.name, table.info.sha256, str(data_dir()))
    with _matcher_lock:
        if key not in _matcher_cache:
            _matcher_cache[key] = IcdMatcher(table)
        return _matcher_cache[key]


def lookup_provenance(table: IcdTable) -> dict[str, str | int]:
    """Which table and which ranking produced a result: recorded with every coded diagnosis."""
    ranker = matcher_for(table).ranker
    return table.info.as_dict() | {"ranking": f"learned ranker: {ranker.trained_on}" if ranker else "similarity"}
