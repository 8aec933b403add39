"""How hospital diagnosis wording varies: the variants a string is looked up as, and how one string that
names several diagnoses (高血压冠心病, 肺炎伴胸腔积液) is cut into parts."""

from __future__ import annotations

import re
import unicodedata

from inference.icd.learned import normalize_text, split_segments
from inference.record.clinical_terms import expand_terms

# Hedges and work-up wording that do not change the diagnosis being coded.
_HEDGES = re.compile(r"(待查|待排|可能性大|可能|考虑|疑似|不除外|\?|？|原因待查|史$)")
_LATERALITY = re.compile(r"^(双侧|左侧|右侧|两侧|双|左|右)")
_PARENTHESES = re.compile(r"[(（][^)）]*[)）]")
# Tumour wording: "左下肺腺癌" is coded by site as "…恶性肿瘤" (plus a morphology code, see cues).
_TUMOUR_GRADE = re.compile(r"(高|中|低|中-低|中低|高-中)分化|浸润性|周围型|中央型|原发性")
_TUMOUR_MORPHOLOGY = re.compile(r"(腺鳞癌|鳞状细胞癌|鳞癌|腺癌|小细胞癌|导管癌|乳头状癌|未分化癌|肉瘤|癌)")
_STAGING = re.compile(r"([CP]?T[0-9XIS][A-C]?N[0-9X][A-C]?M[0-9X][A-C]?|[IV]+[A-C]?期|广泛期|局限期|晚期|早期|根治术后|术后)")
# WHO titles: "未特指的肺炎" is what doctors call 肺炎.
UNSPECIFIED = re.compile(r"^未特指的|[，,]\s*未特指的?$")


def variants(raw: str) -> list[tuple[str, str]]:
    """The forms a string is looked up as, each with a note of how it was derived ("" for the string itself)."""
    text = normalize_text(raw)
    found = [(text, "")]
    expanded = normalize_text(expand_terms(unicodedata.normalize("NFKC", raw)))
    if expanded != text:
        found.append((expanded, f"expanded:{expanded}"))
    for base, note in list(found):
        stripped = _LATERALITY.sub("", _HEDGES.sub("", _PARENTHESES.sub("", base)))
        if stripped and stripped != base:
            found.append((stripped, (note + " " if note else "") + "qualifiers_removed"))
    if _TUMOUR_MORPHOLOGY.search(text):
        site = _TUMOUR_MORPHOLOGY.split(_STAGING.sub("", _TUMOUR_GRADE.sub("", _HEDGES.sub("", text))))[0]
        if site:
            found.append((site + "恶性肿瘤", "tumour_site"))
    return found


def split_diagnoses(text: str, vocabulary: set[str]) -> list[str]:
    """Punctuation first; then a segment made of several known terms (高血压冠心病) is split on them."""
    parts: list[str] = []
    for segment in split_segments(normalize_text(text)):
        for piece in re.split(r"(?<=.)(?:伴|合并|并发|并)(?=.)", segment):
            parts.extend(_split_known_terms(piece, vocabulary))
    return [p for p in parts if p]


def _is_known(word: str, vocabulary: set[str]) -> bool:
    return word in vocabulary or expand_terms(word) != word


def _split_known_terms(segment: str, vocabulary: set[str]) -> list[str]:
    if segment in vocabulary or len(segment) < 4:
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
            if _is_known(word, vocabulary):
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
        if not _is_known(word, vocabulary) and len(word) <= 2:
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
