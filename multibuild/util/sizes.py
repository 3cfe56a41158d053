"""Sizes as people read them: one unit system everywhere (binary: KiB, MiB, GiB)."""

from __future__ import annotations


def format_size(size: int) -> str:
    """`5 B`, `2.0 KiB`, `34.3 MiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
