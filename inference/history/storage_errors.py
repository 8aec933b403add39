"""A database failure as the one-line message a doctor or IT can act on."""

from __future__ import annotations

from inference.errors import StorageError


def storage_error(exc: Exception) -> StorageError:
    text_ = str(exc).lower()
    if "disk is full" in text_ or "database or disk is full" in text_:
        return StorageError("磁盘已满，未能保存，请清理磁盘后重试 / disk full: not saved")
    if "readonly" in text_ or "read-only" in text_:
        return StorageError("历史数据库只读，未能保存 / the history database is read-only: not saved")
    if "locked" in text_ or "busy" in text_:
        return StorageError("历史数据库正被占用，请稍后重试 / the history database is locked by another process")
    if "append-only" in text_:
        return StorageError("历史记录只能追加，不能修改 / history is append-only")
    return StorageError(f"历史数据库写入失败 / history database error: {str(exc).splitlines()[0]}")
