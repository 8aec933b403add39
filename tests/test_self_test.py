"""``medbrief --self-test``: what IT runs on a ward PC after installing or updating it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _self_test(tmp_path: Path, *args: str, root: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "cfg")}
    return subprocess.run([sys.executable, "-m", "inference", "--self-test", *args], capture_output=True, text=True,
                          cwd=root, timeout=600, env=env)


def test_without_the_model_every_resource_and_the_history_are_checked_and_nothing_is_left_behind(tmp_path: Path) -> None:
    proc = _self_test(tmp_path, "--no-model")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("：")[0] for line in lines[:-1]] == [
        "通过  内置 ICD 编码表", "通过  ICD 学习数据", "通过  合并编码规则", "通过  摘要模板", "通过  扫描件文字识别", "通过  历史记录读写"]
    assert lines[-1] == "自检通过 / self-test passed"
    assert not (tmp_path / "data").exists()  # the user's data folder is never touched


def test_a_damaged_install_fails_the_self_test_with_the_reason_and_exit_9(tmp_path: Path) -> None:
    copy = tmp_path / "app"
    shutil.copytree(REPO_ROOT / "inference", copy / "inference", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "resources", copy / "resources", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "resources" / "icd" / "learned" / "ranker.json").unlink()
    proc = _self_test(tmp_path, "--no-model", root=copy)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert "失败  ICD 学习数据：ICD 学习数据缺失或被改动，请重新安装" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("自检未通过：1 项失败") and "Traceback" not in proc.stderr


def test_the_whole_self_test_on_the_demo_model(tmp_path: Path, demo_model_path: Path) -> None:
    proc = _self_test(tmp_path, "--model", str(demo_model_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [line.split("：")[0] for line in proc.stdout.splitlines()[:-1]]
    assert names == ["通过  内置 ICD 编码表", "通过  ICD 学习数据", "通过  合并编码规则", "通过  摘要模板", "通过  扫描件文字识别", "通过  模型加载",
                     "通过  样例病历摘要", "通过  原文核对", "通过  ICD 编码", "通过  历史记录读写"]
    assert "I11.0" in proc.stdout  # the sample's codes end at leaf codes, the combination rule applied


def test_a_missing_model_is_one_failure_and_the_checks_that_need_it_say_they_did_not_run(tmp_path: Path) -> None:
    proc = _self_test(tmp_path, "--model", str(tmp_path / "missing.gguf"))
    assert proc.returncode == 9 and "Traceback" not in proc.stdout + proc.stderr
    assert "失败  模型加载：找不到模型文件" in proc.stdout and "未运行  样例病历摘要" in proc.stdout
    assert "通过  历史记录读写" in proc.stdout  # the history does not need the model
    assert proc.stdout.splitlines()[-1].startswith("自检未通过：1 项失败，3 项因此未运行")


def test_the_desktop_self_test_says_which_model_failed_and_what_did_not_run(tmp_path: Path) -> None:
    not_a_model = tmp_path / "Qwen3-14B-Q4_K_M.gguf"
    not_a_model.write_text("<html>proxy error</html>", encoding="utf-8")
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "cfg"),
           "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "desktop", "--self-test", "--model", str(not_a_model)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=env)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("通过  Qt 界面与中文字体：平台 offscreen")
    assert any(line.startswith("失败  模型加载：") and "不是 GGUF 模型文件" in line for line in lines)
    assert "未运行  样例病历摘要：模型加载未通过 / skipped" in lines
    assert lines[-1].startswith("自检未通过：1 项失败") and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()
