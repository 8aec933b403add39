"""The ``medbrief`` command line. Every expected failure is one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from inference import __version__
from inference.cli import (
    history_commands,
    icd_commands,
    model_commands,
    server_commands,
    stats_command,
    summarize,
    template_commands,
    validate,
)
from inference.crash_log import internal_error
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
    stats_command.add_parser(commands, epilog)
    icd_commands.add_parser(commands, epilog)
    model_commands.add_parsers(commands, epilog)
    server_commands.add_parser(commands, epilog)
    template_commands.add_parser(commands, epilog)
    return parser


def _self_test(argv: list[str]) -> int:
    from inference.cli.engine_options import self_test_settings
    from inference.cli.self_test import run_self_test

    settings = self_test_settings(argv)
    return run_self_test(settings)


def _say(message: str) -> None:
    try:
        print(f"medbrief: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no stderr left to tell: the exit code still says it
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Every outcome is an exit code: expected failures with their one line, an unexpected one logged for IT
    (exit 11), never a traceback."""
    for stream in (sys.stdout, sys.stderr):  # a file name with bytes this system cannot decode still prints
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["--self-test"]:
            return _self_test(argv[1:])
        args = build_parser().parse_args(icd_commands.with_lookup_shorthand(argv))
        handler: Handler = args.handler
        return handler(args)
    except MedBriefError as exc:
        _say(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        _say("已取消 / cancelled")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the traceback in the log
        error = internal_error(exc, f"medbrief {' '.join(argv[:1])}")
        _say(error.message)
        return error.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
