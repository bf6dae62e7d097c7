"""Plain text for the terminal and the report: tables, XLA options."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, with a dashed rule under the header."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def xla_flags(options: dict[str, str]) -> str:
    """XLA options as ``XLA_FLAGS`` takes them: ``--name=value`` separated by spaces, in
    name order ("" for none)."""
    return " ".join(f"--{name}={value}" for name, value in sorted(options.items()))
