"""Shared benchmark plumbing: timing rounds, interleaving, tables, plots, machine description."""

from __future__ import annotations

import datetime
import os
import pathlib
import statistics
from collections.abc import Callable

OUT = pathlib.Path(__file__).resolve().parent / "out"


def dali_available() -> bool:
    """True when NVIDIA DALI can be imported (it is the CPU-only peer)."""
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def interleave(candidates: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each candidate once per round, alternating (A B A B ...), and collect the results."""
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, measure in candidates.items():
            results[name].append(measure())
    return results


def summary(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def fmt(values: list[float], digits: int = 1) -> str:
    """``median (min–max)``."""
    med, lo, hi = summary(values)
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """A one-line description of where the benchmark ran."""
    return f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores"


def save(name: str, table: str, plot: Callable[[pathlib.Path], None]) -> None:
    """Write ``out/{name}.md`` and ``out/{name}.png``."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.md").write_text(table + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        plot(OUT / f"{name}.png")
    except ImportError:
        print("(matplotlib is not installed: no plot)")
