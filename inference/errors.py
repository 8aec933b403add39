"""Error types with messages a doctor or an IT admin can act on.

Every error carries a process exit code; the CLI and the desktop only render them.
"""

from __future__ import annotations


class MedBriefError(Exception):
    """Base of all expected failures. ``str(err)`` is a one-line, actionable message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(MedBriefError):
    """The command line was used wrongly (a missing argument, a bad option value): argparse's own code."""

    exit_code = 2


class InputError(MedBriefError):
    """The record or file given by the user cannot be read."""

    exit_code = 3


class ModelError(MedBriefError):
    """The GGUF model is missing, corrupt, unsupported or cannot be loaded."""

    exit_code = 4


class GenerationError(MedBriefError):
    """Generation failed: the grammar could not be built, output did not validate, context overflow."""

    exit_code = 5


class DraftRejected(MedBriefError):
    """The draft does not come from the record (another patient, the prompt's example): refused, not shown
    as a summary. Kept in the history as rejected; a rerun in parts usually cures it."""

    exit_code = 8


class GenerationCancelled(MedBriefError):
    """The user stopped generation. Not a failure of the engine, which stays usable."""

    exit_code = 130


class IcdTableError(MedBriefError):
    """An ICD table is missing, malformed or cannot be imported."""

    exit_code = 6


class StorageError(MedBriefError):
    """The local history database cannot be opened or written."""

    exit_code = 7


class TemplateError(MedBriefError):
    """A summary template is unknown, not allowed on this ward, or its file is invalid (file, line, field)."""

    exit_code = 12


class InternalError(MedBriefError):
    """A failure no message was written for: its traceback is in the data folder's log for IT."""

    exit_code = 11


def described(exc: BaseException, limit: int = 160) -> str:
    """An exception from a library, in one line for a message: its type and the first line of what it says."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__


# Documented in `medbrief --help` and the README; one place for the numbers.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "validation found error-level findings (validate, summarize --fail-on-findings)",
    2: "usage error: bad or missing arguments, an option value out of range",
    3: "input error: a record or summary file that is missing, unreadable, empty, binary, too large, malformed "
    "or undecodable",
    4: "model error: missing, not GGUF, truncated, unsupported architecture, context too large, load failed, "
    "unreadable config file",
    5: "generation error: grammar, invalid output, record longer than the context",
    6: "ICD table error: missing or malformed table, failed import",
    7: "history store error: database locked, read-only, corrupt (moved aside, readable records recovered), from a "
    "newer version, disk full; the summary is still printed or written first",
    8: "draft rejected: the summary does not come from the record (verdict \"rejected\"; rerun with --part-tokens)",
    9: "self-test: at least one check failed (medbrief --self-test, medbrief-desktop --self-test)",
    10: "batch: at least one record failed (summarize --batch; listed in failures.jsonl, rerun to retry them)",
    11: "internal error: an unexpected failure; its traceback is in the data folder's logs/medbrief-errors.log",
    12: "template error: an unknown or disallowed template id, or an invalid template file (file, line and field "
    "named)",
    130: "cancelled by the user (Ctrl+C)",
}
