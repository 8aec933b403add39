"""Hospital diagnosis wording → ranked ICD-10 candidates from a code table (what the model's ``get_icd_code``
calls answer, in ``coding``).

Candidates come from several sources: table names, the hand lexicon and learned synonyms (exact or fuzzy,
``retrieval``) for each variant and part of the string (``wording``), learned cues, the codes of the most
similar coded examples, and the names nearest in meaning by the learned text encoder. The learned ranker
turns that evidence (``evidence``) into one probability per code: the only score a candidate carries, so a
score means the same in the ICD panel, in the model's tool results and in validation. Every candidate code
exists in the active table — a learned code from another edition is mapped to its closest existing code
(itself, its subcategory or its category) or dropped.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict

import numpy as np

from inference.errors import IcdTableError
from inference.icd.evidence import MEANING_TOP, Evidence, StringContext, feature_matrix, features
from inference.icd.learned import LearnedData, fragments, load_shipped, normalize_text, split_segments
from inference.icd.ranker import RankerModel
from inference.icd.reading import read_as_coder, reading_of
from inference.icd.retrieval import Candidate, NameIndex, NgramIndex
from inference.icd.table import IcdEntry, IcdTable
from inference.icd.wording import split_diagnoses, variants
from inference.record.clinical_terms import expand_terms

__all__ = ["Candidate", "IcdMatcher", "TableVocabulary", "matcher_for", "lookup_provenance"]

_MIN_SCORE = 0.35  # similarity a name needs to be evidence at all
_PART_TOP = 10  # candidates per part handed to the ranker
_NEIGHBOURS = 10
_NEIGHBOUR_MIN_SIMILARITY = 0.2
# The longest diagnosis string in CHIP-CDN (8,000 real ones) has 103 characters; a 10,000-character query took
# 78 s. Longer input is not a diagnosis and gets no candidates.
MAX_QUERY_CHARS = 200
_CJK = re.compile(r"[\u3400-\u9fff]")
_MIN_PROBABILITY = 0.01  # below this a ranked candidate is not worth offering as an alternative
_MIN_MEANING_ONLY_PROBABILITY = 0.05  # … and below this when only the encoder proposed it (any text has neighbours)
_MIN_SOLE_PROBABILITY = 0.2  # no candidate clears the threshold: the best is coded from this
_MEANING_PART_TOP = 3  # names nearest in meaning offered for each part
_STATUS_ONLY = re.compile(r"术后|病史|史|后遗症|后|复发|切除术后|治疗后|放化疗后|化疗后")  # about the part before


def _latin_words(normalized: str) -> list[str]:
    return [word for word in re.findall(r"[A-Z0-9]+", normalized) if len(word) >= 2 and not word.isdigit()]


class IcdMatcher:
    def __init__(self, table: IcdTable, learned: LearnedData | None = None, ranker: RankerModel | None = None) -> None:
        """``learned`` None: the lookup as it ships (learned data and ranker from ``resources/icd/learned``).
        Without a ranker the matcher only gathers evidence (what the build learns the ranker from)."""
        if learned is None:
            shipped = load_shipped()
            learned, ranker = shipped.learned, ranker or shipped.ranker
        self.table = table
        self.names = NameIndex(table, learned)
        self._cues = learned.cues
        # Abbreviations as whole words in the names, synonyms and coded examples (COPD, AECOPD, HIV).
        self._latin_words = {word for text in self.names.texts() for word in _latin_words(text)} | {
            word for example in learned.examples for word in _latin_words(normalize_text(example.text))}
        self._examples = [
            (example.text, list(dict.fromkeys(entry.code for entry in map(table.closest_existing, example.codes) if entry)))
            for example in learned.examples
        ]
        self._example_index = NgramIndex([text for text, _ in self._examples])
        self._category_prior: dict[str, int] = defaultdict(int)
        for _text, codes in self._examples:
            for category in {code[:3] for code in codes}:
                self._category_prior[category] += 1
        # The ranker weighs the encoder's similarities; without the encoder it would misjudge every candidate.
        self.ranker = ranker if learned.encoder is not None else None
        entries = table.lookup_entries()
        self._detailed_share = sum(len(entry.code) > 5 for entry in entries) / max(len(entries), 1)
        self._encoder = learned.encoder
        named: dict[str, IcdEntry] = {}  # one row per distinct name, for the encoder's nearest names
        for entry in entries:
            named.setdefault(normalize_text(entry.name), entry)
        self._named = list(named.values())
        self._name_row = {text: row for row, text in enumerate(named)}
        self._name_vectors = self._encoder.encode(list(named)) if self._encoder else None

    # -- what a doctor, the model and validation see --------------------------------------------------

    def means_nothing(self, text: str) -> bool:
        """Not a diagnosis string at all: longer than any diagnosis line, or without a Chinese character and
        without a known abbreviation as a whole word (COPD is one; the CO inside "codes" is not)."""
        if len(text) > MAX_QUERY_CHARS:
            return True
        if _CJK.search(text) or _CJK.search(expand_terms(unicodedata.normalize("NFKC", text))):
            return False
        return not any(word in self._latin_words for word in _latin_words(normalize_text(text)))

    def lookup(self, disease_name: str, top_k: int = 5) -> list[Candidate]:
        """Candidates for a diagnosis string by the ranker's probability (the string's parts, cues and similar
        examples all count)."""
        if self.means_nothing(disease_name):
            return []
        offered = [
            c for c in self._ranked(disease_name)
            if c.score >= (_MIN_MEANING_ONLY_PROBABILITY if c.match.startswith("similar_meaning") else _MIN_PROBABILITY)
        ]
        return offered[:top_k]

    def codes(self, text: str) -> list[Candidate]:
        """The codes a diagnosis string means (possibly several): what is coded without a doctor choosing."""
        if self.means_nothing(text):
            return []
        ranked = self._ranked(text)
        chosen = [c for c in ranked if c.score >= self.threshold]
        if not chosen and ranked and ranked[0].score >= _MIN_SOLE_PROBABILITY:
            chosen = ranked[:1]  # a diagnosis string means some code: its likeliest one, shown with its score
        return chosen

    @property
    def threshold(self) -> float:
        """The probability from which a candidate is taken as a code of the string."""
        return self._ranker().threshold

    def knows(self, name: str) -> bool:
        """A diagnosis name the table has a code for, by the same measure coding uses."""
        candidates = self.lookup(name, top_k=1)
        return bool(candidates) and candidates[0].score >= self.threshold

    def split_diagnoses(self, text: str) -> list[str]:
        return split_diagnoses(text, self.names.vocabulary)

    def conditions(self, text: str) -> list[str]:
        """The conditions a diagnosis string names, as a coder reads it: one, when a table title states the
        condition with what the string adds (2型糖尿病肾病, 胆囊结石伴急性胆囊炎); else its parts, a status word
        (术后, 史) kept with the condition it is about."""
        kept: list[str] = []
        for segment in split_segments(normalize_text(text)):
            parts = split_diagnoses(segment, self.names.vocabulary)
            if len(parts) > 1 and reading_of(self.table).stated(normalize_text(expand_terms(segment)))[0]:
                parts = [segment]
            for part in parts:
                if kept and _STATUS_ONLY.fullmatch(part):
                    kept[-1] += part
                else:
                    kept.append(part)
        return kept if len(kept) > 1 else [text]  # one condition: as the doctor wrote it

    def _ranker(self) -> RankerModel:
        if self.ranker is None:
            raise IcdTableError("ICD 查找缺少排序模型 / this matcher was built without a ranker (evidence only)")
        return self.ranker

    def _ranked(self, text: str) -> list[Candidate]:
        evidence, matrix = self.evidence(text)
        probabilities = self._ranker().probabilities(matrix)
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
        ranked = sorted(by_name.values(), key=lambda c: (-c.score, len(c.code), c.code))
        return read_as_coder(text, ranked, self.table)

    # -- similarity evidence, part by part ------------------------------------------------------------

    def _similar(self, disease_name: str, top_k: int) -> list[Candidate]:
        scored: dict[str, Candidate] = {}
        for variant, note in variants(disease_name):
            for candidate in self.names.match(variant, note):
                best = scored.get(candidate.code)
                if best is None or candidate.score > best.score:
                    scored[candidate.code] = candidate
        ranked = sorted(scored.values(), key=lambda c: (-c.score, len(c.code), c.code))
        return [c for c in ranked if c.score >= _MIN_SCORE][:top_k]

    def _implied_codes(self, text: str) -> list[Candidate]:
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

    def evidence(self, text: str) -> tuple[list[Evidence], np.ndarray]:
        """Every candidate code for a diagnosis string with what supports it, and the ranker's features."""
        found: dict[str, Evidence] = {}
        normalized = normalize_text(text)
        parts = (
            [] if self.means_nothing(text)
            else [(part, self._similar(part, _PART_TOP)) for part in self.split_diagnoses(text)]
        )
        n_parts = len(parts)
        split = {part for part, _ in parts}
        # An unsplit segment can be a learned wording as a whole (胃溃疡伴出血): its matches count too.
        parts += [(s, self._similar(s, _PART_TOP)) for s in split_segments(normalized) if s not in split]
        for part, candidates in parts:
            best = candidates[0].score if candidates else 0.0
            for rank, candidate in enumerate(candidates):
                item = found.setdefault(candidate.code, Evidence(candidate, part))
                item.parts += 1
                item.from_lookup = True
                if candidate.score >= item.candidate.score:
                    item.candidate, item.part, item.gap = candidate, part, best - candidate.score
                item.rank = min(item.rank, rank)
        for candidate in self._implied_codes(text):
            item = found.setdefault(candidate.code, Evidence(candidate, text))
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
                    item = found[code] = Evidence(Candidate(code, entry.name if entry else code, 0.0, match), text)
                item.neighbour_vote += similarity / total
                item.neighbour_best = max(item.neighbour_best, similarity)
        meaning = self._meaning_evidence(found, normalized, [part for part, _ in parts], text)
        items = list(found.values())
        context = StringContext(normalized, n_parts, self._detailed_share)
        rows = [
            features(item, context, self._category_prior.get(item.candidate.code[:3], 0),
                     self._meaning(item, normalized, meaning))
            for item in items
        ]
        return items, feature_matrix(rows)

    def _meaning_evidence(
        self, found: dict[str, Evidence], normalized: str, parts: list[str], raw: str
    ) -> dict[str, np.ndarray] | None:
        """Names nearest in meaning to the string and to each part join the candidates; returns the
        vectors of every text an item's ``part`` can be for the features (None without an encoder)."""
        if self._name_vectors is None or not len(self._name_vectors):
            return None
        texts = list(dict.fromkeys([normalized, *parts]))
        # Cue and example items carry the string as given (the ranker learned them so): encoded in the same call.
        encoded = self._encoder.encode(texts + ([raw] if raw not in texts else []))
        similarities = self._name_vectors @ encoded[: len(texts)].T  # names × texts
        top = min(MEANING_TOP, len(self._named))
        nearest = np.argpartition(-similarities, top - 1, axis=0)[:top]
        for column, text in enumerate(texts):
            rows = sorted(nearest[:, column], key=lambda r: -similarities[r, column])
            for rank, row in enumerate(rows[: MEANING_TOP if column == 0 else _MEANING_PART_TOP]):
                entry = self._named[row]
                item = found.get(entry.code)
                if item is None:
                    match = f"similar_meaning ({similarities[row, column]:.2f})"
                    item = found[entry.code] = Evidence(Candidate(entry.code, entry.name, 0.0, match), text)
                item.meaning_rank = min(item.meaning_rank, rank)
        return dict(zip([*texts, raw], encoded))

    def _name_vector(self, name: str) -> np.ndarray:
        row = self._name_row.get(name)
        return self._name_vectors[row] if row is not None else self._encoder.encode([name])[0]

    def _meaning(
        self, item: Evidence, normalized: str, meaning: dict[str, np.ndarray] | None
    ) -> tuple[float, float] | None:
        if meaning is None:
            return None
        name = self._name_vector(normalize_text(item.candidate.name))
        return float(name @ meaning[normalized]), float(name @ meaning[item.part])


_matcher_cache: dict[tuple[str, str], IcdMatcher] = {}
_matcher_lock = threading.Lock()  # the engine's worker and the desktop's background threads share the cache


def matcher_for(table: IcdTable) -> IcdMatcher:
    """Built once per table (about a second for 40k names), then shared."""
    key = (table.info.name, table.info.sha256)
    with _matcher_lock:
        if key not in _matcher_cache:
            _matcher_cache[key] = IcdMatcher(table)
        return _matcher_cache[key]


class TableVocabulary:
    """A code table as the review's T3 check asks it (``checks.validation.DiagnosisVocabulary``). The lookup
    index is built on the first question, so a review of a summary without diagnoses never waits for it."""

    def __init__(self, table: IcdTable) -> None:
        self.table = table

    @property
    def name(self) -> str:
        return self.table.info.name

    def knows(self, name: str) -> bool:
        return matcher_for(self.table).knows(name)


def vocabulary_of(table: IcdTable | None) -> TableVocabulary | None:
    return TableVocabulary(table) if table is not None else None


def lookup_provenance(table: IcdTable) -> dict[str, str | int]:
    """Which table and which ranking produced a result: recorded with every coded diagnosis."""
    manifest = load_shipped().manifest
    return table.info.as_dict() | {"ranking": f"learned ranker: {manifest['ranker']}", "learned": manifest["code"][:16]}
