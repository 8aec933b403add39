"""A summary template: an id, a Chinese name, a version and its sections in order. Each section has a kind that
decides its shape in the output grammar and how it is checked against the record (``KINDS``)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from inference.record.values import find_measurements

# kind → what the model writes for it, in the prompt's words.
KINDS: dict[str, str] = {
    "text": "文本",
    "values": "列表，每项含 name（项目）、value（数值或结果）、unit（单位）",
    "diagnoses": "列表，每项含 name（一个诊断）",
    "medications": "列表，每项含 drug（药名）、dose（剂量）、route（途径）、frequency（频次）",
    "dates": "列表，每项含 date（日期）、event（事件）",
}
LIST_KINDS = ("values", "diagnoses", "medications", "dates")
Kind = Literal["text", "values", "diagnoses", "medications", "dates"]

MAX_SECTIONS = 30  # 出院记录 has 8; a template of 200 sections is a mistake, and a grammar the model drowns in
MAX_TEXT_CHARS = 3000
DEFAULT_TEXT_CHARS = 1000
MAX_ITEMS = 80  # the grammar's bound on one list, as for 辅助检查 today
DEFAULT_ITEMS = 30
MIN_ITEM_CHARS = 8  # a list's max_chars leaves each item at least this (肌酐 138 μmol/L is 13)
MAX_INSTRUCTION_CHARS = 300
MAX_EXAMPLE_CHARS = 120
_PATIENT = re.compile(r"\d+\s*岁|[男女]性|患者[男女]|性别")


class SectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    heading: str = Field(min_length=1, max_length=12, pattern=r"^[^【】\n\[\]]+$")
    kind: Kind
    instructions: str = Field(min_length=1, max_length=MAX_INSTRUCTION_CHARS)
    required: bool = True
    max_chars: int | None = Field(None, ge=10, le=MAX_TEXT_CHARS)
    max_items: int | None = Field(None, ge=1, le=MAX_ITEMS)
    example: str | None = Field(None, max_length=MAX_EXAMPLE_CHARS)
    loinc: str | None = Field(None, pattern=r"^\d{4,6}-\d$")  # the FHIR Composition section code
    locked: bool = False  # a template that extends this one cannot remove, rename or re-instruct it
    lock_instructions: bool = False  # … or cannot re-instruct it

    @field_validator("example")
    @classmethod
    def _example_is_not_a_patient(cls, example: str | None) -> str | None:
        """A section example shows a form, not a patient: a model copies a whole example patient into drafts."""
        if example is not None and (_PATIENT.search(example) or len(find_measurements(example)) > 3):
            raise ValueError("示例像是一份完整病例（含性别年龄或多项数值），只写一条格式示例")
        return example

    @field_validator("max_items")
    @classmethod
    def _items_for_lists(cls, bound: int | None, info: ValidationInfo) -> int | None:
        if bound is not None and info.data.get("kind") == "text":
            raise ValueError("文本段落用 max_chars，列表段落用 max_items（和 max_chars）")
        return bound

    @model_validator(mode="after")
    def _room_for_each_item(self) -> SectionSpec:
        if self.kind != "text" and self.max_chars is not None and self.max_chars < MIN_ITEM_CHARS * self.item_bound:
            raise ValueError(f"max_chars 太小：{self.item_bound} 项每项至少 {MIN_ITEM_CHARS} 字")
        return self

    @property
    def char_bound(self) -> int:
        """The section's text at most this long: a text section's, or a list's all items (unbounded: a list
        without ``max_chars`` is bounded by its items' own fields)."""
        return self.max_chars or (DEFAULT_TEXT_CHARS if self.kind == "text" else MAX_ITEMS * 200)

    @property
    def item_chars(self) -> int | None:
        """A list item's share of ``max_chars`` (None: no bound of the section's own)."""
        return self.max_chars // self.item_bound if self.kind != "text" and self.max_chars else None

    @property
    def item_bound(self) -> int:
        return self.max_items or DEFAULT_ITEMS


class SummaryTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    name: str = Field(min_length=1, max_length=20)
    version: str = Field(min_length=1, max_length=20)
    description: str = Field("", max_length=300)
    extends: str | None = None  # the template it was made from (already applied to ``sections``)
    loinc: str = Field("34109-9", pattern=r"^\d{4,6}-\d$")  # the FHIR Composition's type (34109-9: a note)
    sections: list[SectionSpec] = Field(min_length=1, max_length=MAX_SECTIONS)

    @model_validator(mode="after")
    def _unique(self) -> SummaryTemplate:
        for what in ("id", "heading"):
            seen: set[str] = set()
            for section in self.sections:
                value = getattr(section, what)
                if value in seen:
                    raise ValueError(f"段落{'编号' if what == 'id' else '标题'}重复：{value}")
                seen.add(value)
        return self

    def section(self, section_id: str) -> SectionSpec:
        return next(s for s in self.sections if s.id == section_id)

    @property
    def headings(self) -> dict[str, str]:
        return {s.id: s.heading for s in self.sections}

    @property
    def content_hash(self) -> str:
        """What the template asks, hashed: two files that ask the same have the same hash, whatever their
        comments and layout. The history keeps it with every run written with the template."""
        canonical = json.dumps(self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def identity(self) -> dict[str, str]:
        """The template as a run records it."""
        return {"id": self.id, "name": self.name, "version": self.version, "hash": self.content_hash}
