"""Signing as a deliberate act: the doctor who signs is named (once per session on a shared ward PC, kept
with the OS user), and what should stop a signature — error findings that stand, ICD codes still 待确认, a
draft written by the demo model — is listed; signing over it needs an explicit reason that goes into the
audit log."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from inference.history.store import os_user
from inference.record.status import DraftStatus

ACTION_LABELS = {DraftStatus.REVIEWED: "标记已审核", DraftStatus.SIGNED: "签署"}


@dataclass(frozen=True)
class SignatureRequest:
    status: str  # reviewed | signed
    signer: str  # the name entered earlier this session, or ""
    blockers: tuple[str, ...]  # what should stop it, in words


@dataclass(frozen=True)
class Signature:
    signer: str
    override: str  # the reason for signing over the blockers ("" when there were none)


class SignatureDialog(QDialog):
    """Names the signer and the OS account; with blockers, signing needs the box ticked and a reason."""

    def __init__(self, request: SignatureRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        action = ACTION_LABELS[request.status]
        self.setWindowTitle(f"确认{action}")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{action}当前版本。签署医生姓名（系统用户 {os_user()} 一并记录）："))
        self.name = QLineEdit(request.signer)
        self.name.setObjectName("signer_name")
        self.name.setPlaceholderText("请输入您的姓名")
        layout.addWidget(self.name)
        self.override = QCheckBox("我已知晓上述问题，仍要继续")
        self.reason = QLineEdit()
        self.reason.setObjectName("override_reason")
        self.reason.setPlaceholderText("继续的理由（记入审计日志）")
        if request.blockers:
            warning = QLabel("以下问题应先处理：\n" + "\n".join(f"· {b}" for b in request.blockers))
            warning.setObjectName("signing_blockers")
            warning.setStyleSheet("color: #b00020;")
            layout.addWidget(warning)
            layout.addWidget(self.override)
            layout.addWidget(self.reason)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(action)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("取消")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._blocked = bool(request.blockers)
        for signal in (self.name.textChanged, self.reason.textChanged, self.override.toggled):
            signal.connect(self._update)
        self._update()

    def _update(self) -> None:
        ready = bool(self.name.text().strip()) and (
            not self._blocked or (self.override.isChecked() and bool(self.reason.text().strip())))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)

    def signature(self) -> Signature:
        return Signature(self.name.text().strip(), self.reason.text().strip() if self._blocked else "")


def ask_signature(parent: QWidget, request: SignatureRequest) -> Signature | None:
    dialog = SignatureDialog(request, parent)
    return dialog.signature() if dialog.exec() == QDialog.DialogCode.Accepted else None
