"""``medbrief server check URL``: what IT needs to know about a department's model server before the ward PCs
use it — the model, the context one request gets (a llama-server slot), how records will be cut, whether the
grammar is honoured, and the sample record's time through it. Read from the server, never assumed."""

from __future__ import annotations

import argparse
import json

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
    from inference.errors import GenerationError
    from inference.server_check import check_server

    args.server_url, args.backend = args.url, "server"
    # Unreachable, TLS, key, model, ignored grammar: a ModelError, exit 4. A slot too small: exit 5 after the
    # facts that show why.
    check = check_server(engine_settings(args), sample=not args.no_sample)
    if args.json:
        print(json.dumps(check.as_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(check.lines()))
    if check.problem:
        raise GenerationError(check.problem)
    return 0
