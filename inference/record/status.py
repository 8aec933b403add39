"""The review status of a summary version — the one list the history, the CLI, the window and exports use — and
the attestation that moved a version to reviewed or signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum


class DraftStatus(StrEnum):
    DRAFT = "draft"
    REVIEWED = "reviewed"
    SIGNED = "signed"
    REJECTED = "rejected"  # the checks refused the draft (not from the record): kept, never reviewed or signed
    STOPPED = "stopped"  # the doctor stopped a long record's run: its finished parts, kept, never reviewed or signed

    @property
    def label(self) -> str:
        """The word a doctor reads."""
        return STATUS_LABELS[self]


# The review moves forward only, in this order; a rejected or stopped draft is outside it (an edit keeps it so).
REVIEW_ORDER = (DraftStatus.DRAFT, DraftStatus.REVIEWED, DraftStatus.SIGNED)
# Why a version with this status can never be reviewed or signed.
UNSIGNABLE = {DraftStatus.REJECTED: "未通过核对（与原文不符），请重新生成",
              DraftStatus.STOPPED: "生成时被停止，只含已完成的部分；请继续生成剩余部分"}
STATUS_LABELS = {DraftStatus.DRAFT: "草稿", DraftStatus.REVIEWED: "已审核", DraftStatus.SIGNED: "已签署",
                 DraftStatus.REJECTED: "未通过核对", DraftStatus.STOPPED: "已停止（未完成）"}


def run_status(rejected: bool, stopped: bool) -> DraftStatus:
    """The status a model run's draft starts with: refused by the checks, stopped by the doctor, or a draft."""
    return DraftStatus.REJECTED if rejected else DraftStatus.STOPPED if stopped else DraftStatus.DRAFT


@dataclass(frozen=True)
class Attestation:
    """A version's review or signature as the history keeps it: who, when, and what stood at that moment that
    should have stopped it — in words, each a finding or blocker — with the reason given for going on."""

    status: DraftStatus
    signer: str  # the doctor named in the dialog
    os_user: str  # the OS account that did it (a ward PC is shared under few accounts)
    at: datetime  # UTC
    override: str = ""  # the reason for going on past ``overridden`` ("" when nothing stood)
    overridden: tuple[str, ...] = ()

    @property
    def signed(self) -> bool:
        return self.status == DraftStatus.SIGNED

    def local_time(self) -> str:
        return f"{self.at.replace(tzinfo=timezone.utc).astimezone():%Y-%m-%d %H:%M}"

    def as_dict(self) -> dict[str, object]:
        return {"status": str(self.status), "signer": self.signer, "os_user": self.os_user,
                "at": self.at.replace(tzinfo=timezone.utc).isoformat(timespec="seconds"), "override": self.override,
                "overridden": list(self.overridden)}
