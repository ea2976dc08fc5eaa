"""The indicator catalogue as Markdown: the section of docs/reports.md that lists every
indicator's numerator, denominator, factor, attribution and source definition, written from
:mod:`sinks.reports.indicators` so the documentation says what the code computes.

    .venv/bin/python -m sinks.reports.catalogue > /tmp/indicators.md   # then paste, or
    .venv/bin/python -m sinks.reports.catalogue --write docs/reports.md

``--write`` replaces the text between the ``<!-- indicators:begin -->`` and
``<!-- indicators:end -->`` markers; a test checks the committed file is current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sinks.reports.indicators import INDICATORS, KINDS, Indicator

__all__ = ["BEGIN", "END", "markdown", "replace_section"]

BEGIN = "<!-- indicators:begin -->"
END = "<!-- indicators:end -->"

_DENOMINATOR_FROM = {
    "data": "counted from the store",
    "population": "the hierarchy's population",
    "stations": "the stations of the unit (hierarchy)",
    "expected": "units expected to report (hierarchy)",
    "none": "none (a count)",
}
_SCALING = {
    "none": "none: a ratio of two counts of the same period",
    "per_year": "a rate per year: over a shorter period the period's own rate, or "
    "× 12 / months with `--annualise`; the output says which",
    "prorated_target": "the annual target pro-rated: value × 12 / months",
}


def _factor(ind: Indicator) -> str:
    if ind.denominator_source == "none":
        return f"value = Σ numerator ({ind.unit})"
    mult = f"{ind.multiplier:,}"
    return f"value = {mult} × Σ numerator / Σ denominator ({ind.unit})"


def _entry(ind: Indicator) -> list[str]:
    group = "" if ind.population_group == "total" else f" — group `{ind.population_group}`"
    return [
        f"#### `{ind.code}` — {ind.name}",
        "",
        f"- **factor**: {_factor(ind)}",
        f"- **numerator**: {ind.numerator}",
        f"- **denominator**: {ind.denominator} ({_DENOMINATOR_FROM[ind.denominator_source]}"
        f"{group})",
        f"- **attribution**: {ind.attribution}",
        f"- **period**: {_SCALING[ind.scaling]}",
        f"- **source definition**: {ind.definition}",
        f"- **records**: {ind.source}; **nature**: {ind.nature}",
        "",
    ]


def markdown() -> str:
    """The catalogue section (between the markers), per report kind."""
    lines = [BEGIN, ""]
    for kind in KINDS:
        lines += [f"### `{kind}`", ""]
        per_disease = [
            i for i in INDICATORS if i.kind == kind and i.definition == "as incidence_all"
        ]
        for ind in INDICATORS:
            if ind.kind == kind and ind not in per_disease:
                lines += _entry(ind)
        if per_disease:
            codes = ", ".join(f"`{i.code}`" for i in per_disease)
            lines += [
                "#### `incidence_<disease>` — one per notifiable disease",
                "",
                "As `incidence_all`, restricted to one `disease` of "
                "`schemas.codes.NOTIFIABLE_DISEASES` (code lower-cased): " + codes + ".",
                "",
            ]
    lines.append(END)
    return "\n".join(lines)


def replace_section(text: str) -> str:
    """``text`` (docs/reports.md) with the catalogue section replaced."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + markdown() + text[end:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--write", type=Path, help="replace the section in this Markdown file")
    args = ap.parse_args(argv)
    if args.write:
        args.write.write_text(replace_section(args.write.read_text(encoding="utf-8")))
    else:
        sys.stdout.write(markdown() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
