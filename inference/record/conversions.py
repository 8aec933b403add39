"""Unit conversions between the units a quantity is written in (``resources/validation/unit_conversions.tsv``):
what lets ``NT-proBNP>=1000 pg/mL`` find a record that wrote 1.2 ng/mL. A conversion that depends on the
substance (a molar mass) is listed for that quantity only; none is ever guessed."""

from __future__ import annotations

from functools import lru_cache

from inference.paths import resources_dir
from inference.record.values import fold, parameter_table, unit_spellings
from inference.tsv_files import read_tsv


@lru_cache(maxsize=1)
def _conversions() -> dict[tuple[str, str, str], float]:
    table: dict[tuple[str, str, str], float] = {}
    for parameter, written_from, written_to, factor in read_tsv(
            resources_dir() / "validation" / "unit_conversions.tsv", 4):
        source, target = (unit_spellings().get(fold(u), u) for u in (written_from, written_to))
        table[(parameter, source, target)] = float(factor)
        table[(parameter, target, source)] = 1 / float(factor)
    return table


def conversion(parameter: str, source: str, target: str) -> float | None:
    """The factor that takes a value of this quantity in ``source`` to ``target``, or None."""
    if source == target:
        return 1.0
    table = _conversions()
    return table.get((parameter, source, target), table.get(("*", source, target)))


def units_of(parameter: str) -> list[str]:
    """The units the parameters table lists for a quantity, in its order."""
    ranges, _names = parameter_table()
    return list(dict.fromkeys(r.unit for r in ranges.get(parameter, [])))


def quantity_of(name: str, unit: str) -> str | None:
    """The quantity a name measures when the value's unit is one of its units or converts to one (NT-proBNP in
    ng/mL), else None."""
    _ranges, names = parameter_table()
    parameter = names.get(name.strip().upper())
    if parameter and any(conversion(parameter, unit, u) is not None for u in units_of(parameter)):
        return parameter
    return None
