"""What the ICD lookup has learned, as it ships: synonyms, cues, coded examples, text encoder and ranker.

CHIP-CDN pairs real diagnosis strings with 北京临床版 terms; ``inference.icd.training`` learns from it (never
from dev) and writes the result to ``resources/icd/learned/`` with a manifest: the hashes of its inputs, of
the code that built it, and of every file. The app reads it read-only from there, checking each file
against the manifest, so every install codes exactly as the measured product did.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from inference.errors import IcdTableError
from inference.icd.encoder import TextEncoder
from inference.icd.ranker import RankerModel, load_model
from inference.paths import resources_dir
from inference.tsv_files import read_tsv

LEARNED_DIR = resources_dir() / "icd" / "learned"
SYNONYMS_FILE = "synonyms.tsv"
CUES_FILE = "cues.tsv"
EXAMPLES_FILE = "examples.tsv"
ENCODER_FILE = "encoder.npy"
ENCODER_SCALES_FILE = "encoder_scales.npy"
RANKER_FILE = "ranker.json"
MANIFEST_FILE = "manifest.json"
LEARNED_FILES = (SYNONYMS_FILE, CUES_FILE, EXAMPLES_FILE, ENCODER_FILE, ENCODER_SCALES_FILE, RANKER_FILE)
_SEGMENT_SPLIT = re.compile(r"[;；,，、。/\s]+|(?<=[\u4e00-\u9fff])\.(?=[\u4e00-\u9fff])")


@dataclass(frozen=True)
class LearnedSynonym:
    alias: str
    term: str
    code: str
    count: int


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), no spaces, Latin upper-case: the form every match runs on."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", text).upper()


def split_segments(text: str) -> list[str]:
    return [segment for segment in (s.strip("?？。.!！:：\"'()（）[]【】") for s in _SEGMENT_SPLIT.split(text)) if segment]


@dataclass(frozen=True)
class LearnedCue:
    cue: str
    term: str
    code: str
    precision: float


def fragments(text: str) -> set[str]:
    """The 2–4 character alphanumeric pieces of a normalized string: what a cue can be."""
    pieces = {text[i:i + n] for n in (2, 3, 4) for i in range(len(text) - n + 1)}
    return {piece for piece in pieces if all(ch.isalnum() for ch in piece)}


@dataclass(frozen=True)
class LearnedExample:
    text: str  # normalized diagnosis string
    codes: tuple[str, ...]  # its gold codes (北京临床版)


@dataclass(frozen=True)
class LearnedData:
    """Everything learned from a training set; empty means the hand lexicon and fuzzy matching only."""

    synonyms: dict[str, list[LearnedSynonym]] = field(default_factory=dict)
    cues: dict[str, list[LearnedCue]] = field(default_factory=dict)
    examples: list[LearnedExample] = field(default_factory=list)
    encoder: TextEncoder | None = None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(directory: Path = LEARNED_DIR) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IcdTableError(f"安装不完整：缺少 ICD 学习数据 / the learned ICD lookup is missing: {directory}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IcdTableError(f"ICD 学习数据清单已损坏 / the learned lookup's manifest is damaged: {directory}")
    return manifest


@dataclass(frozen=True)
class ShippedLookup:
    """The learned data and the ranker that was trained on evidence from it: used together or not at all."""

    learned: LearnedData
    ranker: RankerModel
    manifest: dict


@lru_cache(maxsize=2)
def load_shipped(directory: Path = LEARNED_DIR) -> ShippedLookup:
    """Every learned file, each checked against the manifest's hash; a missing or altered file is an
    incomplete install (IcdTableError), never a silently weaker lookup."""
    manifest = read_manifest(directory)
    for name in LEARNED_FILES:
        path = directory / name
        if not path.exists() or manifest["files"].get(name) != file_sha256(path):
            raise IcdTableError(f"ICD 学习数据缺失或被改动，请重新安装 / learned ICD file missing or altered: {path}")
    learned = read_learned(directory)
    ranker = load_model(directory / RANKER_FILE)
    if learned.encoder is None or ranker is None:
        raise IcdTableError(f"ICD 学习数据与本版本不符 / learned ICD files do not fit this version: {directory}")
    return ShippedLookup(learned, ranker, manifest)


def read_learned(directory: Path) -> LearnedData:
    """The learned files of ``directory`` as they are (the build reads its own output with this too)."""
    def rows(name: str, columns: int) -> list[list[str]]:
        path = directory / name
        return read_tsv(path, columns) if path.exists() else []

    synonyms: dict[str, list[LearnedSynonym]] = defaultdict(list)
    for alias, term, code, count in rows(SYNONYMS_FILE, 4):
        synonyms[alias].append(LearnedSynonym(alias, term, code, int(count)))
    cues: dict[str, list[LearnedCue]] = defaultdict(list)
    for cue, term, code, precision in rows(CUES_FILE, 4):
        cues[cue].append(LearnedCue(cue, term, code, float(precision)))
    examples = [LearnedExample(text, tuple(codes.split("|"))) for text, codes in rows(EXAMPLES_FILE, 2) if codes]
    encoder = TextEncoder.load(directory / ENCODER_FILE, directory / ENCODER_SCALES_FILE)
    return LearnedData(dict(synonyms), dict(cues), examples, encoder)
