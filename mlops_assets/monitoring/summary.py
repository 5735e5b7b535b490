"""The monitoring summary: one row per day (rows, label coverage, model version, drift, the
task's primary metric -- ROC AUC for a binary use case --, check outcomes) and an HTML overview
page with a small plot per figure over the days.

Pure module: the rows (chain/summary.py merges them from each day's metadata) become a table
and a page; the plots are inline SVG, so the page needs no JavaScript and no network.
"""
from __future__ import annotations

import math
from typing import Any

import jinja2


# (name, Dagster table type, description): the summary table's columns, in order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("day", "string", "day in the use case's zone (partition key)"),
    ("rows", "int", "rows scored that day"),
    ("label_coverage", "float", "share of the scored rows with a label (when the performance report ran)"),
    ("model_version", "string", "registered model version(s) that served the day"),
    ("drift_share", "float", "share of drifted features (drift report)"),
    ("prediction_drift", "float", "drift score of the model's scores vs the reference"),
    ("roc_auc", "float", "ROC AUC of the served predictions against their labels"),
    ("drift_check", "string", "drift_below_threshold: pass / FAIL / -"),
    ("performance_check", "string", "performance_within_tolerance: pass / FAIL / pending (too few labels) / -"),
)
NAMES = [c[0] for c in COLUMNS]
METRIC_COLUMN = NAMES.index("roc_auc")  # where the primary metric's column stands


def columns(metric: str = "roc_auc", label: str | None = None) -> tuple[tuple[str, str, str], ...]:
    """The summary table's columns for a use case judged by ``metric`` (its column, named after
    the metric, in the place of ROC AUC's; ``label``: how the metric reads)."""
    if metric == "roc_auc":
        return COLUMNS
    own = (metric, "float", f"{label or metric} of the served predictions against their labels")
    return COLUMNS[:METRIC_COLUMN] + (own,) + COLUMNS[METRIC_COLUMN + 1:]


def names(metric: str = "roc_auc") -> list[str]:
    return [c[0] for c in columns(metric)]


def verdict(passed: bool | None, evaluated: bool = True) -> str:
    if passed is None:
        return "-"
    if not evaluated:
        return "pending"
    return "pass" if passed else "FAIL"


def as_float(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else round(x, 4)


def as_int(v: Any) -> int | None:
    return None if v is None else int(v)


def table_records(rows: list[dict], metric: str = "roc_auc") -> list[dict]:
    """Rows for dg.TableRecord: every record has every column (Dagster requires the same fields
    in each), unknown figures as None (shown empty)."""
    return [{n: r.get(n) for n in names(metric)} for r in rows]


# The page's template (templates/overview.html.j2) is package data; autoescape on, since the
# use case's name and the days come from users' files.
_PAGES = jinja2.Environment(loader=jinja2.PackageLoader("mlops_assets.monitoring"), autoescape=True,
                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _plot(title: str, points: list[tuple[str, float | None]], *, lo: float | None = None, hi: float | None = None,
          line: float | None = None, width: int = 640, height: int = 180) -> dict:
    """What the page's plot macro draws for one figure over the days (oldest left), in pixels:
    gaps where the figure is unknown; `line` a dashed reference (a threshold)."""
    known = [v for _, v in points if v is not None]
    pad_l, pad_r, pad_t, pad_b = 48, 12, 24, 28
    plot: dict[str, Any] = {"title": title, "width": width, "height": height, "left": pad_l,
                            "right": width - pad_r, "base": height - pad_b, "empty": not known}
    if not known:
        return plot
    lo = min(known + ([line] if line is not None else [])) if lo is None else lo
    hi = max(known + ([line] if line is not None else [])) if hi is None else hi
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = len(points)
    def x(i: int) -> str:
        return f"{pad_l + (width - pad_l - pad_r) * (i / (n - 1) if n > 1 else 0.5):.1f}"
    def y(v: float) -> str:
        return f"{pad_t + (height - pad_t - pad_b) * (1 - (v - lo) / (hi - lo)):.1f}"
    lines: list[str] = []
    segment: list[str] = []
    dots = []
    for i, (day, v) in enumerate(points):
        if v is None:
            if segment:
                lines.append(" ".join(segment))
            segment = []
            continue
        segment.append(f"{x(i)},{y(v)}")
        dots.append({"x": x(i), "y": y(v), "tip": f"{day}: {v:.4g}"})
    if segment:
        lines.append(" ".join(segment))
    plot.update(ticks=[(f"{float(y(v)) + 4:.1f}", f"{v:.3g}") for v in (lo, hi)], dots=dots, lines=lines,
                reference=None if line is None else y(line), first=points[0][0], last=points[-1][0])
    return plot


def overview_html(use_case: str, rows: list[dict], *, drift_threshold: float, min_coverage: float,
                  metric: str = "roc_auc", label: str = "ROC AUC") -> str:
    """The overview page: plots of rows, label coverage, drift share, prediction drift and the
    primary metric (``metric``, a column of the rows, read as ``label``) over the days, then the
    table itself."""
    chronological = list(reversed(rows))
    def series(name: str) -> list[tuple[str, float | None]]:
        return [(r["day"], r[name]) for r in chronological]
    plots = [
        _plot("rows scored per day", series("rows"), lo=0),
        _plot(f"label coverage (threshold {min_coverage:.0%})", series("label_coverage"), lo=0, hi=1, line=min_coverage),
        _plot(f"drift share (threshold {drift_threshold})", series("drift_share"), lo=0, hi=1, line=drift_threshold),
        _plot("prediction drift score", series("prediction_drift"), lo=0),
        _plot(f"{label} of served predictions", series(metric)),
    ]
    return _PAGES.get_template("overview.html.j2").render(use_case=use_case, rows=rows, names=names(metric),
                                                          plots=plots)
