"""One language on screen: the core's messages are 中文 / English for the CLI and the logs; the window shows
the Chinese part."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff]")


def chinese(message: str) -> str:
    """``找不到模型文件 / model file not found: /x.gguf`` → ``找不到模型文件：/x.gguf`` (the value after the English
    text's colon is kept: a path or a number the doctor may need); a line with no Chinese part stays whole."""
    lines = []
    for line in message.splitlines():
        head, sep, tail = line.partition(" / ")
        if not sep or not _CJK.search(head):
            lines.append(line)
            continue
        _english, colon, value = tail.partition(": ")
        lines.append(f"{head}：{value}" if colon and value else head)
    return "\n".join(lines)
