"""Data drift between a reference and a current frame, via Evidently 0.7's DataDriftPreset.

Pure module: no Dagster imports, and Evidently is imported lazily inside
`compute_drift` because importing it takes ~15-20 s, which code-location
loading must not pay.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ColumnDrift", "DriftResult", "compute_drift", "drift_columns", "series_drift"]

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


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric_columns: list[str],
    categorical_columns: list[str],
    html_path: str | os.PathLike | None = None,
    drift_share_threshold: float = 0.5,
    column_stattests: dict[str, str] | None = None,
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

    written = _write_atomically(html_path, snapshot.get_html_str(as_iframe=False)) if html_path is not None else None

    order = {name: i for i, name in enumerate(columns)}
    return DriftResult(
        drift_share=drift_share,
        n_columns=len(per_column),
        n_drifted=n_drifted,
        columns=tuple(sorted(per_column, key=lambda c: order[c.column])),
        dataset_drift=dataset_drift,
        html_path=written,
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


def _write_atomically(path: str | os.PathLike, text: str) -> str:
    # Readers (the Dagster UI, a static file server) must never see a partial
    # report at the stable path, so write beside it and rename over it.
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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
