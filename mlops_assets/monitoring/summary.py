"""The monitoring summary: one row per day (rows, label coverage, model version, drift, ROC AUC,
check outcomes) and an HTML overview page with a small plot per figure over the days.

Pure module: the rows are merged from plain per-day dicts the asset reads from the event log;
the plots are inline SVG, so the page needs no JavaScript and no network.
"""
from __future__ import annotations

import html
import math
from typing import Any

from mlops_assets.chain import handoffs as h


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


def _verdict(passed: bool | None, evaluated: bool = True) -> str:
    if passed is None:
        return "-"
    if not evaluated:
        return "pending"
    return "pass" if passed else "FAIL"


def summary_rows(predictions: dict[str, dict], drift: dict[str, dict], performance: dict[str, dict],
                 scored_rows: dict[str, int] | None = None) -> list[dict]:
    """One row per day that has predictions, a drift report or a performance report, newest
    first. Each argument maps a day to that day's latest materialization metadata (plain
    values) of batch_predictions, drift_report and performance_report; unknown figures are None.
    `scored_rows`: the rows each day has in the predictions table, counted there (a scoring run
    over a range of days records the range's total, not the day's)."""
    days = sorted(set(predictions) | set(drift) | set(performance), reverse=True)
    counted = scored_rows or {}
    rows = []
    for day in days:
        p, d, f = predictions.get(day, {}), drift.get(day, {}), performance.get(day, {})
        evaluated = bool(f.get(h.PERF_EVALUATED, False))
        rows.append({
            "day": day,
            "rows": counted.get(day, 0) if scored_rows is not None else _int(p.get(h.ROW_COUNT, f.get("scored_rows"))),
            "label_coverage": _float(f.get(h.PERF_COVERAGE)),
            "model_version": str(f.get(h.PERF_MODEL_VERSIONS) or p.get(h.SCORED_MODEL_VERSION) or "") or None,
            "drift_share": _float(d.get(h.DRIFT_SHARE)),
            "prediction_drift": _float(d.get(h.PREDICTION_DRIFT_SCORE)),
            "roc_auc": _float(f.get(h.PERF_ROC_AUC)) if evaluated else None,
            "drift_check": _verdict(None if h.DRIFT_FLAGGED not in d else not d[h.DRIFT_FLAGGED]),
            "performance_check": _verdict(f.get(h.PERF_PASSED) if f else None, evaluated),
        })
    return rows


def _float(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else round(x, 4)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def table_records(rows: list[dict]) -> list[dict]:
    """Rows for dg.TableRecord: every record has every column (Dagster requires the same fields
    in each), unknown figures as None (shown empty)."""
    return [{n: r.get(n) for n in NAMES} for r in rows]


def _svg(title: str, points: list[tuple[str, float | None]], *, lo: float | None = None, hi: float | None = None,
         line: float | None = None, width: int = 640, height: int = 180) -> str:
    """A line plot of one figure over the days (oldest left); gaps where the figure is unknown;
    `line` draws a dashed reference (a threshold)."""
    known = [v for _, v in points if v is not None]
    pad_l, pad_r, pad_t, pad_b = 48, 12, 24, 28
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
    parts = [head, f'<text x="{pad_l}" y="16" font-size="13" font-family="sans-serif">{html.escape(title)}</text>']
    if not known:
        parts.append(f'<text x="{pad_l}" y="{height / 2}" font-size="12" fill="#888" font-family="sans-serif">no data yet</text></svg>')
        return "".join(parts)
    lo = min(known + ([line] if line is not None else [])) if lo is None else lo
    hi = max(known + ([line] if line is not None else [])) if hi is None else hi
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = len(points)
    def x(i: int) -> float:
        return pad_l + (width - pad_l - pad_r) * (i / (n - 1) if n > 1 else 0.5)
    def y(v: float) -> float:
        return pad_t + (height - pad_t - pad_b) * (1 - (v - lo) / (hi - lo))
    parts.append(f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#999"/>')
    for v in (lo, hi):
        parts.append(f'<text x="4" y="{y(v) + 4:.1f}" font-size="10" font-family="sans-serif">{v:.3g}</text>')
    if line is not None:
        parts.append(f'<line x1="{pad_l}" y1="{y(line):.1f}" x2="{width - pad_r}" y2="{y(line):.1f}" '
                     'stroke="#d33" stroke-dasharray="4 3"/>')
    segment: list[str] = []
    segments = []
    for i, (_, v) in enumerate(points):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(v):.1f}")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="#1f77b4"><title>{html.escape(points[i][0])}: {v:.4g}</title></circle>')
    if segment:
        segments.append(segment)
    for seg in segments:
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{" ".join(seg)}"/>')
    first, last = points[0][0], points[-1][0]
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="10" font-family="sans-serif">{html.escape(first)}</text>')
    parts.append(f'<text x="{width - pad_r}" y="{height - 8}" font-size="10" text-anchor="end" '
                 f'font-family="sans-serif">{html.escape(last)}</text></svg>')
    return "".join(parts)


def overview_html(use_case: str, rows: list[dict], *, drift_threshold: float, min_coverage: float) -> str:
    """The overview page: plots of rows, label coverage, drift share, prediction drift and ROC
    AUC over the days, then the table itself."""
    chronological = list(reversed(rows))
    def series(name: str) -> list[tuple[str, float | None]]:
        return [(r["day"], r[name]) for r in chronological]
    plots = [
        _svg("rows scored per day", series("rows"), lo=0),
        _svg(f"label coverage (threshold {min_coverage:.0%})", series("label_coverage"), lo=0, hi=1, line=min_coverage),
        _svg(f"drift share (threshold {drift_threshold})", series("drift_share"), lo=0, hi=1, line=drift_threshold),
        _svg("prediction drift score", series("prediction_drift"), lo=0),
        _svg("ROC AUC of served predictions", series("roc_auc")),
    ]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in NAMES)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('-' if r[n] is None else str(r[n]))}</td>" for n in NAMES)
                   + "</tr>" for r in rows)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(use_case)} monitoring</title>"
            "<style>body{font-family:sans-serif;margin:20px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
            "td{text-align:right}.plots svg{display:block;margin:8px 0}</style></head><body>"
            f"<h1>{html.escape(use_case)}: monitoring over {len(rows)} day(s)</h1><div class='plots'>{''.join(plots)}</div>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")
