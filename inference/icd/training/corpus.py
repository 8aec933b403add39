"""Learn synonyms, cues, coded examples and the encoder's training pairs from a CHIP-CDN-shaped training set.

Each raw string is split into segments and every gold term is aligned to the segment that shares the
most characters with it (synonyms); every name of the edition the set is coded in is a synonym of its
code too (the bundled WHO table has only official titles — 未特指的心力衰竭 — while editions list
clinical names — 慢性心力衰竭); short fragments that nearly always imply a term are cues; every whole
string with its codes is an example the lookup finds neighbours among. CHIP-CDN dev is held out and
refused here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from inference.errors import IcdTableError
from inference.icd.importer import read_entries
from inference.icd.learned import (
    CUES_FILE,
    ENCODER_FILE,
    ENCODER_SCALES_FILE,
    EXAMPLES_FILE,
    SYNONYMS_FILE,
    LearnedCue,
    LearnedData,
    LearnedExample,
    LearnedSynonym,
    fragments,
    normalize_text,
    split_segments,
)
from inference.icd.training.encoder_training import train_encoder
from inference.record.clinical_terms import expand_terms

# A cue is a 2–4 character fragment of the raw wording that, in train, nearly always comes with a
# standard term the wording does not spell out (…鳞癌 → 鳞状细胞癌, …化疗 → 化学治疗).
CUE_MIN_SUPPORT = 4
CUE_MIN_PRECISION = 0.75


def _similarity(segment: str, term: str) -> float:
    """How well a raw segment spells a standard term: shared bigrams after expanding 心梗/…癌 wording."""
    expanded = expand_terms(segment).replace("癌", "恶性肿瘤")
    grams_a = {expanded[i:i + 2] for i in range(len(expanded) - 1)} | set(expanded)
    grams_b = {term[i:i + 2] for i in range(len(term) - 1)} | set(term)
    return len(grams_a & grams_b) / max(len(grams_b), 1)


def _align(segments: list[str], terms: list[str]) -> list[tuple[str, str]]:
    """Greedy one-to-one alignment by similarity; leftover terms go to their best segment if it is close."""
    if len(segments) == 1:
        return [(segments[0], term) for term in terms]
    scored = sorted(((_similarity(s, t), s, t) for s in segments for t in terms), reverse=True)
    pairs, used_segments, used_terms = [], set(), set()
    for score, segment, term in scored:
        if score >= 0.3 and segment not in used_segments and term not in used_terms:
            pairs.append((segment, term))
            used_segments.add(segment)
            used_terms.add(term)
    for score, segment, term in scored:
        if term not in used_terms and score >= 0.5:
            pairs.append((segment, term))
            used_terms.add(term)
    return pairs


def record_terms(record: dict[str, str]) -> list[str]:
    """The standard terms a CHIP-CDN record is coded with, in order, once each."""
    return list(dict.fromkeys(t.strip().strip('"') for t in record["normalized_result"].split("##") if t.strip()))


def learn_synonyms(train: list[dict[str, str]], term_codes: dict[str, str]) -> list[LearnedSynonym]:
    pairs: Counter[tuple[str, str]] = Counter()
    for record in train:
        terms = record_terms(record)
        text = normalize_text(record["text"])
        segments = split_segments(text) or [text]
        for segment, term in _align(list(dict.fromkeys(segments)), terms):
            pairs[(segment, term)] += 1
        for term in terms:
            pairs[(normalize_text(term), term)] += 1
    learned = []
    for (alias, term), count in pairs.items():
        code = term_codes.get(term)
        if code:
            learned.append(LearnedSynonym(alias=alias, term=term, code=code, count=count))
    return sorted(learned, key=lambda s: (s.alias, -s.count))


def learn_cues(train: list[dict[str, str]], term_codes: dict[str, str]) -> list[LearnedCue]:
    seen: Counter[str] = Counter()
    together: Counter[tuple[str, str]] = Counter()
    for record in train:
        pieces = fragments(normalize_text(record["text"]))
        terms = set(record_terms(record))
        seen.update(pieces)
        together.update((piece, term) for piece in pieces for term in terms)
    cues = []
    for (fragment, term), count in together.items():
        precision = count / seen[fragment]
        if count >= CUE_MIN_SUPPORT and precision >= CUE_MIN_PRECISION and term in term_codes:
            cues.append(LearnedCue(fragment, term, term_codes[term], round(precision, 3)))
    return sorted(cues, key=lambda c: (c.cue, c.term))


def learn_examples(train: list[dict[str, str]], term_codes: dict[str, str]) -> list[LearnedExample]:
    examples = []
    for record in train:
        codes = tuple(term_codes[t] for t in record_terms(record) if t in term_codes)
        text = normalize_text(record["text"])
        if codes and text:
            examples.append(LearnedExample(text, codes))
    return examples


def read_term_codes(table_csv: Path) -> dict[str, str]:
    """Each name of an edition table with its (first) code, read by the table importer's parser."""
    term_codes: dict[str, str] = {}
    for entry in read_entries(table_csv):
        term_codes.setdefault(entry.name, entry.code)
    return term_codes


def read_training_set(train_json: Path) -> list[dict[str, str]]:
    """CHIP-CDN-shaped records (``text``, ``normalized_result``); raises IcdTableError on anything else."""
    if "dev" in train_json.name.lower():
        raise IcdTableError("CHIP-CDN dev 是保留评测集，不能用于学习 / the dev split is held out")
    records = json.loads(train_json.read_text(encoding="utf-8"))
    if not isinstance(records, list) or not records or not all(
        isinstance(r, dict) and isinstance(r.get("text"), str) and isinstance(r.get("normalized_result"), str)
        for r in records
    ):
        raise IcdTableError(
            f"训练集应为含 text 与 normalized_result 的非空列表 / {train_json.name} is not a non-empty list of "
            "records with text and normalized_result"
        )
    return records


def encoder_pairs(
    train: list[dict[str, str]], term_codes: dict[str, str], reference_titles: dict[str, str]
) -> list[tuple[str, str]]:
    """What the encoder should place close: each training string and its gold terms; each edition name and
    the reference table's title of its subcategory (or category)."""
    pairs = [(normalize_text(r["text"]), normalize_text(t)) for r in train for t in record_terms(r) if t in term_codes]
    for name, code in term_codes.items():
        title = reference_titles.get(code[:5]) or reference_titles.get(code[:3])
        if title and title != name:
            pairs.append((normalize_text(name), normalize_text(title)))
    return pairs


def learn_all(
    train: list[dict[str, str]], term_codes: dict[str, str], reference_titles: dict[str, str] | None = None
) -> LearnedData:
    """``reference_titles`` (code → title of the bundled table): also learn the text encoder, from the
    training strings and from each edition name paired with the reference title of its code."""
    synonyms: dict[str, list[LearnedSynonym]] = defaultdict(list)
    for synonym in learn_synonyms(train, term_codes):
        synonyms[synonym.alias].append(synonym)
    for term, code in term_codes.items():  # every name of the edition: its code's clinical wording
        alias = normalize_text(term)
        if alias not in synonyms:
            synonyms[alias].append(LearnedSynonym(alias, term, code, 1))
    cues: dict[str, list[LearnedCue]] = defaultdict(list)
    for cue in learn_cues(train, term_codes):
        cues[cue.cue].append(cue)
    encoder = train_encoder(encoder_pairs(train, term_codes, reference_titles)) if reference_titles else None
    return LearnedData(dict(synonyms), dict(cues), learn_examples(train, term_codes), encoder)


def write_learned(learned: LearnedData, directory: Path, source: str) -> None:
    """The synonym, cue, example and encoder files (the ranker and manifest are the build's)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"# learned from {source}: alias, term, code, count"]
    lines += [f"{s.alias}\t{s.term}\t{s.code}\t{s.count}" for group in learned.synonyms.values() for s in group]
    (directory / SYNONYMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = [f"# learned from {source}: cue, term, code, precision"]
    lines += [f"{c.cue}\t{c.term}\t{c.code}\t{c.precision}" for group in learned.cues.values() for c in group]
    (directory / CUES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = [f"# learned from {source}: diagnosis string, codes separated by |"]
    lines += [f"{e.text}\t{'|'.join(e.codes)}" for e in learned.examples]
    (directory / EXAMPLES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if learned.encoder is None:
        raise ValueError("the shipped lookup needs its encoder: learn with reference titles")
    learned.encoder.save(directory / ENCODER_FILE, directory / ENCODER_SCALES_FILE)
