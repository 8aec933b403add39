"""What the command line prints and writes: output files, progress on stderr, codes and findings in words."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from inference.checks.findings import SEVERITY_LABELS, Finding
from inference.errors import InputError, UsageError
from inference.paths import write_private

if TYPE_CHECKING:
    from inference.icd.coding import IcdAssignment
    from inference.progress import Progress


def check_output_folder(out: str | None) -> None:
    if out and not Path(out).resolve().parent.is_dir():
        raise InputError(f"输出目录不存在 / output folder does not exist: {Path(out).parent}")


def write_output(text: str, out: str | None) -> None:
    text = text if text.endswith("\n") else text + "\n"
    if out:
        try:
            write_private(Path(out), text)
        except OSError as exc:
            raise InputError(f"无法写入输出文件 / cannot write {out}: {exc.strerror}") from exc
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
    except (OSError, ValueError) as exc:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - nothing more can reach the old one
        raise InputError(f"无法写出结果（标准输出已关闭或磁盘已满）/ cannot write to standard output: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None


def text_argument(value: str | None, what: str) -> str | None:
    """A word typed on the command line (a query, a name): bytes the system's encoding cannot read are a usage
    error, not a search for garbage. File names are not checked here: any bytes are a file name."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{what}中有无法识别的字符（终端编码不是 UTF-8？）/ an argument is not valid text") from None
    return value


class StderrProgress:
    """Progress for long work on stderr: a line per phase or part, and every few seconds in between."""

    EVERY_S = 5.0

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last: tuple[str, int] | None = None
        self._last_at = 0.0

    def step(self, message: str) -> None:
        if not self.quiet:
            print(f"[medbrief] {message}", file=sys.stderr, flush=True)

    def progress(self, progress: Progress) -> None:
        key = (progress.phase, progress.part)
        now = time.monotonic()
        if key != self._last or now - self._last_at >= self.EVERY_S:
            self._last, self._last_at = key, now
            self.step(progress.line())


def icd_text(assignments: list[IcdAssignment]) -> str:
    if not assignments:
        return ""
    from inference.icd.coding import PROVENANCE_LABELS  # the lookup's numpy and tables: only when codes print

    lines = [f"\n【ICD-10】（{assignments[0].table.get('name', '')}，待医生确认）"]
    for a in assignments:
        code = f"{a.code} {a.name}" if a.code else "未找到"
        why = f"；{a.precision}" if a.precision else ""
        lines.append(f"{a.diagnosis}：{code}（{PROVENANCE_LABELS.get(a.provenance, a.provenance)}，{a.score:.2f}{why}）")
    return "\n".join(lines) + "\n"


def findings_text(findings: list[Finding], unchecked: int = 0) -> str:
    note = f"\n另有 {unchecked} 条陈述原文说法不一，未能自动核对，请人工核对" if unchecked else ""
    if not findings:
        return f"\n【核对】未发现问题{note}\n"
    lines = [f"\n【核对】{len(findings)} 条"]
    for finding in findings:
        suggestion = f"（建议：{finding.suggestion}）" if finding.suggestion else ""
        lines.append(f"- [{SEVERITY_LABELS[finding.severity]} {finding.rule_id}] {finding.message}{suggestion}")
        lines += [f"    · {detail}" for detail in finding.details]
    return "\n".join(lines) + note + "\n"


def date_argument(value: str | None, what: str) -> date | None:
    """A --since/--until day as written (2026-01-31), or a usage error naming the flag's meaning."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{what}日期写法有误：{value[:20]!r}（写作 2026-01-31）") from None


def one_format(args: argparse.Namespace) -> None:
    if args.json and args.csv:
        raise UsageError("--json 与 --csv 只能选一个 / choose --json or --csv")
