"""Formatting the figures: sizes, seconds, ratios, verdicts, plain-text tables, and a year from fewer days."""

from __future__ import annotations

import numpy as np

from bench.config import YEAR_DAYS


def gib(b: float) -> str:
    return f"{b / 1024**3:.2f} GiB" if b >= 1024**3 else f"{b / 1024**2:.0f} MiB"


def secs(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 120:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def ratio(x: float) -> str:
    """A speed-up factor; below 0.1 also said the other way round."""
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.3f}x (pandas {1 / max(x, 1e-12):.0f}x faster)"


def mark(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    align = align or ("l" + "r" * (len(header) - 1))
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def linear_year_total(per_day: list[float]) -> tuple[float, str]:
    """Sum over YEAR_DAYS days of a per-day time that may grow with the history: a least-squares line over the
    measured days (the first, which creates the tables, left out when there are at least 3)."""
    n = len(per_day)
    if n == 0:
        return 0.0, "no days"
    xs = list(range(1, n + 1))
    ys = list(per_day)
    if n < 3:
        mean = float(np.mean(ys))
        return mean * YEAR_DAYS, f"mean {mean:.1f} s (too few days for a growth)"
    xs, ys = xs[1:], ys[1:]
    slope, intercept = np.polyfit(xs, ys, 1)
    slope = max(0.0, float(slope))
    intercept = float(np.mean(ys) - slope * np.mean(xs))
    total = per_day[0] + sum(intercept + slope * d for d in range(2, YEAR_DAYS + 1))
    return total, f"{intercept:.1f} s + {slope:.2f} s x day"


