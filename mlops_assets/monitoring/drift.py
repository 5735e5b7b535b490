"""Data drift between a reference and a current frame, via Evidently 0.7's DataDriftPreset.

Pure module: no Dagster imports, and Evidently is imported lazily inside
`compute_drift` because importing it takes ~15-20 s, which code-location
loading must not pay.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ColumnDrift", "DriftResult", "compute_drift", "drift_columns", "prune_dated_reports", "render_report",
           "series_drift", "write_report"]

# Snapshot `config.type` tags of the metrics DataDriftPreset expands into.
_VALUE_DRIFT_TYPE = "evidently:metric_v2:ValueDrift"
_DRIFTED_COUNT_TYPE = "evidently:metric_v2:DriftedColumnsCount"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    stattest: str  # Evidently's display name, e.g. "Wasserstein distance (normed)"
    # Distance for distance tests (drift when score >= threshold), p-value for
    # hypothesis tests (drift when score < threshold); use `drifted`, not the sign.
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    drift_share: float
    n_columns: int
    n_drifted: int
    columns: tuple[ColumnDrift, ...]
    dataset_drift: bool
    html_path: str | None
    snapshot_path: str | None = None


# Below this many rows in the day, each column is judged by a p-value test (K-S for numbers,
# chi-square for categories) rather than Evidently's choice for a large reference: its normed
# Wasserstein / Jensen-Shannon distances have a fixed 0.1 threshold that sampling noise alone
# passes on a small day (measured: half the columns of a stationary 100-row day, share 0.53).
SMALL_DAY_ROWS = 1000


def sample_aware_stattests(numeric_columns: list[str], categorical_columns: list[str], current_rows: int,
                           configured: dict[str, str] | None = None) -> dict[str, str]:
    """The test of each column for a day of `current_rows` rows: the use case's own choice
    (`configured`) first; on a small day a p-value test for the others; else Evidently's."""
    chosen = {} if current_rows >= SMALL_DAY_ROWS else {
        **{c: "ks" for c in numeric_columns}, **{c: "chisquare" for c in categorical_columns}}
    return {**chosen, **(configured or {})}


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric_columns: list[str],
    categorical_columns: list[str],
    html_path: str | os.PathLike | None = None,
    drift_share_threshold: float = 0.5,
    column_stattests: dict[str, str] | None = None,
    snapshot_path: str | os.PathLike | None = None,
    html_lib_dir: str | os.PathLike | None = None,
) -> DriftResult:
    """Per-column and dataset-level drift of `current` against `reference`.

    Evidently picks the test per column from type and size: with <= 1000
    reference rows, K-S (numeric) / chi-square or Z (categorical) p-values;
    above that, normed Wasserstein / Jensen-Shannon distances.

    Timing (Evidently 0.7.23, 17 columns, excluding the import): ~2 s at 2k
    rows, ~9 s at 100k rows, with or without html_path. The preset computes
    each column's drift three times (ValueDrift, DriftedColumnsCount and its
    own render table) and builds the plotly widgets inside `run()`, so
    skipping the HTML saves nothing.

    `html_path`: Evidently's HTML report, self-contained (4-5 MB: Evidently's JavaScript is
    inside), or, with `html_lib_dir`, only this report's data (a few hundred kB) with the
    JavaScript and font shared from that folder. `snapshot_path`: Evidently's snapshot, the
    report's whole content (gzip-compressed JSON when the name ends in .gz, ~0.2 MB), which
    `render_report` turns back into the HTML.
    """
    columns = _validate(reference, current, numeric_columns, categorical_columns, drift_share_threshold)
    stattests = dict(column_stattests or {})
    unknown = sorted(set(stattests) - set(columns))
    if unknown:
        raise ValueError(f"column_stattests names column(s) {unknown} that are not checked (columns: {columns})")

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # Fill every type list explicitly: any list left as None makes Evidently
    # infer types for the remaining columns.
    definition = DataDefinition(
        numerical_columns=list(numeric_columns),
        categorical_columns=list(categorical_columns),
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    # include_tests=True: the per-column drift verdicts only appear in the
    # snapshot as test statuses; the metric values alone carry just the score.
    report = Report(
        [DataDriftPreset(columns=columns, drift_share=drift_share_threshold, per_column_method=stattests or None)],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )

    per_column, evidently_count, evidently_share, dataset_drift = _parse_snapshot(snapshot.dict())

    missing = set(columns) - {c.column for c in per_column}
    if missing:
        raise RuntimeError(f"Evidently reported no drift result for columns {sorted(missing)}")
    n_drifted = sum(c.drifted for c in per_column)
    drift_share = n_drifted / len(per_column)
    # Guards against a change in Evidently's snapshot layout silently skewing the numbers.
    if n_drifted != evidently_count or abs(drift_share - evidently_share) > 1e-9:
        raise RuntimeError(
            f"per-column drift ({n_drifted}/{len(per_column)}) disagrees with Evidently's "
            f"DriftedColumnsCount (count={evidently_count}, share={evidently_share})"
        )

    written, snapshot_written = write_report(snapshot, html_path=html_path, snapshot_path=snapshot_path,
                                             html_lib_dir=html_lib_dir)

    order = {name: i for i, name in enumerate(columns)}
    return DriftResult(
        drift_share=drift_share,
        n_columns=len(per_column),
        n_drifted=n_drifted,
        columns=tuple(sorted(per_column, key=lambda c: order[c.column])),
        dataset_drift=dataset_drift,
        html_path=written,
        snapshot_path=snapshot_written,
    )


def _validate(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric_columns: list[str],
    categorical_columns: list[str],
    drift_share_threshold: float,
) -> list[str]:
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.empty:
            raise ValueError(f"{name} frame is empty ({frame.shape[0]} rows x {frame.shape[1]} columns)")
    # A bare string would otherwise be iterated character by character.
    for name, cols in (("numeric_columns", numeric_columns), ("categorical_columns", categorical_columns)):
        if isinstance(cols, str):
            raise TypeError(f"{name} must be a list of column names, not a string")
    columns = [*numeric_columns, *categorical_columns]
    if not columns:
        raise ValueError("no columns to check: numeric_columns and categorical_columns are both empty")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"columns listed more than once (or as both numeric and categorical): {duplicated}")
    if not 0.0 < drift_share_threshold <= 1.0:
        raise ValueError(f"drift_share_threshold must be in (0, 1], got {drift_share_threshold}")
    for name, frame in (("reference", reference), ("current", current)):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"column(s) {absent} missing from the {name} frame")
        for col in numeric_columns:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise ValueError(f"numeric column {col!r} in the {name} frame has non-numeric dtype {frame[col].dtype}")
        for col in columns:
            if frame[col].isna().all():
                raise ValueError(f"column {col!r} in the {name} frame has no non-null values")
    return columns


def _parse_snapshot(snap: dict[str, Any]) -> tuple[list[ColumnDrift], int, float, bool]:
    """Per-column results plus Evidently's own DriftedColumnsCount and dataset verdict."""
    # Tests point back at their metric by id; status FAIL means drift detected.
    status_by_metric: dict[str, str] = {}
    for test in snap["tests"]:
        status_by_metric[test["metric_config"]["metric_id"]] = test["status"]

    per_column: list[ColumnDrift] = []
    count_metric: dict[str, Any] | None = None
    for metric in snap["metrics"]:
        kind = metric.get("config", {}).get("type")
        if kind == _DRIFTED_COUNT_TYPE:
            count_metric = metric
        elif kind == _VALUE_DRIFT_TYPE:
            per_column.append(
                ColumnDrift(
                    column=metric["config"]["column"],
                    stattest=str(metric["config"]["method"]),
                    score=float(metric["value"]),
                    threshold=float(metric["config"]["threshold"]),
                    drifted=_is_fail(status_by_metric, metric),
                )
            )
    if count_metric is None:
        raise RuntimeError("Evidently snapshot has no DriftedColumnsCount metric")
    # DriftedColumnsCount's default test is `share < drift_share`, so FAIL is
    # exactly Evidently's dataset-drift verdict (share >= drift_share).
    dataset_drift = _is_fail(status_by_metric, count_metric)
    value = count_metric["value"]
    return per_column, int(value["count"]), float(value["share"]), dataset_drift


def _is_fail(status_by_metric: dict[str, str], metric: dict[str, Any]) -> bool:
    status = status_by_metric.get(metric["id"])
    if status not in ("FAIL", "SUCCESS"):
        raise RuntimeError(f"unexpected Evidently test status {status!r} for {metric.get('metric_name')}")
    return status == "FAIL"


# --- report files ------------------------------------------------------------------------------

def write_report(snapshot, *, html_path=None, snapshot_path=None, html_lib_dir=None) -> tuple[str | None, str | None]:
    """Write an Evidently snapshot's HTML and/or the snapshot itself (see compute_drift);
    returns the paths written."""
    html = snap = None
    if snapshot_path is not None:
        text = snapshot.dumps()
        data = gzip.compress(text.encode("utf-8"), mtime=0) if str(snapshot_path).endswith(".gz") else text.encode()
        snap = _write_atomically(snapshot_path, data)
    if html_path is not None:
        html = _write_atomically(html_path, report_html(snapshot, html_lib_dir, Path(html_path).parent))
    return html, snap


def report_html(snapshot, lib_dir: str | os.PathLike | None = None, html_dir: str | os.PathLike | None = None) -> str:
    """Evidently's own HTML of a snapshot: self-contained when ``lib_dir`` is None; else the
    report's data only, loading Evidently's JavaScript and icon font from ``lib_dir`` (copied
    there once per Evidently version) by a path relative to ``html_dir``, the report's folder."""
    if lib_dir is None:
        return snapshot.get_html_str(as_iframe=False)
    import evidently
    from evidently.legacy.renderers.html_widgets import group_widget
    from evidently.legacy.utils import dashboard

    lib = Path(lib_dir)
    js, font = lib / f"evidently-{evidently.__version__}.js", lib / "material-ui-icons.woff2"
    for source, target in ((Path(dashboard.STATIC_PATH) / "index.js", js),
                           (Path(dashboard.STATIC_PATH) / "material-ui-icons.woff2", font)):
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            _write_atomically(target, source.read_bytes())
    base = Path(html_dir) if html_dir is not None else lib.parent

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, base)).as_posix()

    # evidently.core.metric_types.render_widgets (as Snapshot.get_html_str calls it), with the
    # library and font named instead of embedded
    from evidently.legacy.model.dashboard import DashboardInfo
    from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo
    from evidently.legacy.renderers.base_renderer import DetailsInfo

    widgets = [group_widget(title="", widgets=snapshot._widgets), *snapshot._tests_widgets]
    items = [DetailsInfo(title="", info=g.params if isinstance(g, AdditionalGraphInfo) else g, id=g.id)
             for w in widgets for g in w.get_additional_graphs()]
    params = dashboard.TemplateParams(
        dashboard_id="metric_" + uuid.uuid4().hex,
        dashboard_info=DashboardInfo(name="Report", widgets=widgets),
        additional_graphs={f"{i.id}": i.info.dict() if isinstance(i.info, BaseWidgetInfo) else i.info for i in items},
        embed_lib=False, embed_font=False, font_file=rel(font), include_js_files=[rel(js)])
    return dashboard.file_html_template(params)


def load_snapshot(path: str | os.PathLike):
    """An Evidently snapshot written by write_report (plain or gzip-compressed JSON)."""
    from evidently.core.report import Snapshot

    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return Snapshot.loads(data.decode("utf-8"))


def render_report(snapshot_path: str | os.PathLike, html_path: str | os.PathLike | None = None) -> str:
    """The self-contained HTML of a stored snapshot (e.g. a drift report's MLflow artifact,
    `drift/drift_report_<day>.json.gz`), written to ``html_path`` when given."""
    html = report_html(load_snapshot(snapshot_path))
    if html_path is not None:
        _write_atomically(html_path, html)
    return html


_DATED = re.compile(r"_(\d{4}-\d{2}-\d{2})\.(html|json|json\.gz)$")


def prune_dated_reports(folder: str | os.PathLike, keep_days: int | None, keep: str | None = None) -> list[Path]:
    """Delete the dated reports (`<name>_<YYYY-MM-DD>.html|.json|.json.gz`) directly in
    ``folder`` whose day is ``keep_days`` or more days before the newest report's day, except
    those of day ``keep`` (the report just written, when a backfill writes an old day); None
    keeps all. Returns the files deleted."""
    import datetime as dt

    folder = Path(folder)
    if not keep_days or not folder.is_dir():
        return []
    dated = [(m.group(1), p) for p in folder.iterdir() if p.is_file() and (m := _DATED.search(p.name))]
    if not dated:
        return []
    cutoff = (dt.date.fromisoformat(max(d for d, _ in dated)) - dt.timedelta(days=keep_days - 1)).isoformat()
    removed = []
    for day, path in dated:
        if day < cutoff and day != keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def main(argv: list[str] | None = None) -> int:
    """python -m mlops_assets.monitoring.drift SNAPSHOT [HTML]: the HTML of a stored report."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_assets.monitoring.drift",
                                     description="Render a stored Evidently report (snapshot JSON, .json.gz) as HTML.")
    parser.add_argument("snapshot", help="the snapshot file, e.g. a drift report's MLflow artifact")
    parser.add_argument("html", nargs="?", help="where to write the HTML (default: beside it, .html)")
    args = parser.parse_args(argv)
    source = Path(args.snapshot)
    target = Path(args.html) if args.html else source.with_name(source.name.split(".")[0] + ".html")
    render_report(source, target)
    print(target)
    return 0


def _write_atomically(path: str | os.PathLike, text: str | bytes) -> str:
    # Readers (the Dagster UI, a static file server) must never see a partial
    # report at the stable path, so write beside it and rename over it.
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the report is meant to be readable
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return str(target)


def drift_columns(numeric: list[str], categorical: list[str], exclude: list[str]) -> tuple[list[str], list[str]]:
    """The features a daily drift report checks: all but the excluded ones (e.g. a month or a
    day of week, constant within a day, which would make every daily report drift)."""
    unknown = sorted(set(exclude) - set(numeric) - set(categorical))
    if unknown:
        raise ValueError(f"excluded drift column(s) {unknown} are not features")
    keep_num = [c for c in numeric if c not in exclude]
    keep_cat = [c for c in categorical if c not in exclude]
    if not keep_num and not keep_cat:
        raise ValueError("every feature is excluded from drift: nothing left to check")
    return keep_num, keep_cat


def series_drift(reference, current, *, name: str, categorical: bool, stattest: str | None = None) -> ColumnDrift:
    """Drift of one series (the model's scores: prediction drift; the labels: target drift)."""
    ref = pd.DataFrame({name: pd.Series(reference).reset_index(drop=True)})
    cur = pd.DataFrame({name: pd.Series(current).reset_index(drop=True)})
    if categorical:  # labels as strings: Evidently treats 0/1 integers as numbers otherwise
        ref, cur = ref.astype(str), cur.astype(str)
    result = compute_drift(ref, cur, numeric_columns=[] if categorical else [name],
                           categorical_columns=[name] if categorical else [],
                           column_stattests={name: stattest} if stattest else None)
    return result.columns[0]


if __name__ == "__main__":
    raise SystemExit(main())
