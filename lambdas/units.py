"""Byte counts for people: one formatting for the HTML report (lambdas/reporting/) and the CLI (sfncopy/)."""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(n: float) -> str:
    """Binary units with one decimal: 0 B, 512 B, 1.5 KiB, 12.0 MiB (PiB past that)."""
    value = float(n)
    for unit in UNITS:
        if abs(value) < 1024 or unit == UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
