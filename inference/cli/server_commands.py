"""``medbrief server check URL``: what IT needs to know about a department's model server before the ward PCs
use it — the model, the context one request gets (a llama-server slot), how records will be cut, whether the
grammar is honoured, and the sample record's time through it. Read from the server, never assumed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from inference.cli.engine_options import add_engine_options, engine_settings


def add_parser(commands: argparse._SubParsersAction, epilog: str) -> None:
    server = commands.add_parser(
        "server", help="check a department's model server (llama.cpp's llama-server, vLLM, llama_cpp.server)",
        description="medbrief server check URL [--server-template qwen3] [--server-constraint grammar] "
                    "[--server-ca-bundle PEM] [--no-sample] [--json]\n"
                    "Connects as the ward PCs will: the model served, the context per request (llama-server: per "
                    "slot), the record part that fits it, the grammar probe, TLS, then the sample record summarized "
                    "and coded through the server. Exit 0: usable; 4: the server cannot be used (unreachable, "
                    "certificate, key, model, grammar ignored); 5: the slot is too small or the sample failed.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument("action", choices=["check"])
    server.add_argument("url", metavar="URL", help="the server, e.g. https://llm.hospital.local:8080")
    server.add_argument("--no-sample", action="store_true", help="skip the sample record (seconds instead of a minute)")
    server.add_argument("--json", action="store_true", help="JSON output")
    add_engine_options(server)
    server.set_defaults(handler=run_server)


def run_server(args: argparse.Namespace) -> int:
    from inference.llm.server import ServerEngine
    from inference.summary.summarizer import part_tokens

    args.server_url, args.backend = args.url, "server"
    settings = engine_settings(args)
    engine = ServerEngine(settings)  # unreachable, TLS, key, model, ignored grammar: a ModelError, exit 4
    facts = engine.facts
    report: dict[str, Any] = {
        "url": engine.url, "model": engine.model_id, "engine": facts.engine, "slots": facts.slots,
        "context_per_request": engine.info.n_ctx,
        "context_from": "server" if facts.slot_context else "settings (n_ctx): the server does not say",
        "grammar": f"honoured ({settings.server_constraint})", "tls": engine.url.startswith("https://"),
        "demo": engine.info.is_demo, "warning": engine.info.warning or None,
    }
    try:
        report["part_tokens"] = part_tokens(engine)
        if not args.no_sample:
            report["sample"] = _sample(engine)
    finally:
        _print(report, args.json)
    return 0


def _sample(engine: Any) -> dict[str, Any]:
    """The bundled sample record through the whole pipeline, coded against the bundled table."""
    from inference.cli.self_test import sample_record_path
    from inference.documents import load_document
    from inference.icd.table import open_table
    from inference.pipeline import run_pipeline
    from inference.progress import RunContext

    report = run_pipeline(load_document(sample_record_path()), engine, RunContext(), table=open_table(None))
    timings = report.result.timings
    return {"seconds": round(report.elapsed_s, 1), "calls": len(timings.calls),
            "completion_tokens": timings.completion_tokens,
            "diagnoses_coded": sum(1 for a in report.icd if a.code), "diagnoses": len(report.result.summary.diagnoses)}


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    slots = f"{report['slots']} 个槽位 / slots" if report["slots"] else "未知 / not stated"
    lines = [
        f"服务器 / server: {report['url']}（{'HTTPS' if report['tls'] else '明文 HTTP / plain HTTP'}）",
        f"模型 / model: {report['model']}",
        f"引擎 / engine: {report['engine']}，并行 / parallel: {slots}",
        f"每次请求的上下文 / context per request: {report['context_per_request']} token（{report['context_from']}）",
        f"输出约束 / grammar: {report['grammar']}",
    ]
    if "part_tokens" in report:
        lines.append(f"病历分段 / record part: 每段至多 {report['part_tokens']} token / tokens per part")
    if report.get("sample"):
        sample = report["sample"]
        lines.append(f"样例病历 / sample record: {sample['seconds']} 秒，{sample['calls']} 次调用，"
                     f"{sample['completion_tokens']} 个输出 token，{sample['diagnoses_coded']}/{sample['diagnoses']} "
                     f"个诊断已编码")
    if report["demo"]:
        lines.append("警告 / warning: 服务器运行的是演示模型（非临床用途）/ the server runs the DEMO model, not for clinical use")
    if report["warning"]:
        lines.append(f"警告 / warning: {report['warning']}")
    print("\n".join(lines))
