"""The review status of a summary version: the one list the history, the CLI, the window and exports use."""

from __future__ import annotations

from enum import StrEnum


class DraftStatus(StrEnum):
    DRAFT = "draft"
    REVIEWED = "reviewed"
    SIGNED = "signed"
    REJECTED = "rejected"  # the checks refused the draft (not from the record): kept, never reviewed or signed

    @property
    def label(self) -> str:
        """The word a doctor reads."""
        return STATUS_LABELS[self]


# The review moves forward only, in this order; a rejected draft is outside it.
REVIEW_ORDER = (DraftStatus.DRAFT, DraftStatus.REVIEWED, DraftStatus.SIGNED)
STATUS_LABELS = {DraftStatus.DRAFT: "草稿", DraftStatus.REVIEWED: "已审核", DraftStatus.SIGNED: "已签署",
                 DraftStatus.REJECTED: "未通过核对"}
