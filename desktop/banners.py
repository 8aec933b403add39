"""The strips across the top of the window: the demo model, a refused draft, a stopped one, a signed version."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from inference.open_record import OpenRecord

DEMO_BANNER = "演示模型：仅供体验软件，不可用于临床。请在“设置”中选择医院部署的 GGUF 模型。"
STOPPED_BANNER = "已停止：草稿只含已完成的段落，不能审核或签署。请点“继续生成”完成剩余部分，或重新生成。"
SIGNED_BANNER = "已签署：此版本不可更改。如需修改，请点“修改（新版本）”，已签署版本保留在历史记录中。"


def _banner(name: str, text: str, colours: str) -> QLabel:
    banner = QLabel(text)
    banner.setObjectName(name)
    banner.setWordWrap(True)
    banner.setStyleSheet(colours + " padding:6px; font-weight:bold;")
    banner.setVisible(False)
    return banner


class Banners(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.demo = _banner("demo_banner", DEMO_BANNER, "background:#fff3b0; color:#6b4e00;")
        self.rejected = _banner("rejected_banner", "", "background:#c62828; color:white;")
        self.stopped = _banner("stopped_banner", STOPPED_BANNER, "background:#ffe0b2; color:#7a3e00;")
        self.signed = _banner("signed_banner", SIGNED_BANNER, "background:#e3f2e1; color:#1b5e20;")
        for banner in (self.demo, self.rejected, self.stopped, self.signed):
            layout.addWidget(banner)

    def show_demo_model(self, demo: bool) -> None:
        self.demo.setVisible(demo)

    def render(self, record: OpenRecord | None) -> None:
        rejected = record is not None and record.rejected
        if rejected:
            reasons = "；".join(record.rejection_reasons())
            self.rejected.setText("未通过核对：摘要与原文不符，草稿不可复制、导出或签署。"
                                  + (f"{reasons}。" if reasons else "") + "请点击“分段重新生成”。")
        self.rejected.setVisible(rejected)
        self.stopped.setVisible(record is not None and record.stopped and not rejected)
        self.signed.setVisible(record is not None and record.signed)
