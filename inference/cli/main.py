"""The ``medbrief`` command line. Every expected failure is one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from inference import __version__
from inference.cli import history_commands, icd_commands, model_commands, summarize, validate
from inference.errors import EXIT_CODES, MedBriefError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line naming the command and where its help is, exit 2 (argparse's code); every
    subcommand's parser is one of these."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}（用法见 {self.prog} --help）\n")


def exit_code_epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="medbrief",
        description="MedBrief 病历摘要助手: offline structured summaries of Chinese medical records.",
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"medbrief {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    epilog = exit_code_epilog()
    summarize.add_parser(commands, epilog)
    validate.add_parser(commands, epilog)
    history_commands.add_parser(commands, epilog)
    icd_commands.add_parser(commands, epilog)
    model_commands.add_parsers(commands, epilog)
    return parser


def _self_test(argv: list[str]) -> int:
    from inference.cli.engine_options import self_test_settings
    from inference.cli.self_test import run_self_test

    settings = self_test_settings(argv)
    return run_self_test(settings)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--self-test"]:
        try:
            return _self_test(argv[1:])
        except MedBriefError as exc:
            print(f"medbrief: {exc.message}", file=sys.stderr)
            return exc.exit_code
    args = build_parser().parse_args(icd_commands.with_lookup_shorthand(argv))
    handler: Handler = args.handler
    try:
        return handler(args)
    except MedBriefError as exc:
        print(f"medbrief: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("medbrief: 已取消 / cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
