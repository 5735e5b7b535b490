"""Real performance of the predictions served for one day, once their labels arrived.

Pure module (no Dagster): the join of served predictions with outcomes, the label-coverage
rule, the figures (Evidently's ClassificationPreset, cross-checked with the project's own
maths, plus calibration), and the tolerance rule against the model version's holdout figures.
Evidently is imported inside `evidently_figures`: code-location loading must not pay for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.evaluation import metrics as m
from mlops_assets.monitoring.drift import write_report

LABEL = "label"
SCORE = "score"
VERSION = "model_version"
THRESHOLD = 0.5  # the decision threshold of precision, recall and F1 (as the evaluation's F1)

# Evidently's figures and the names the project records them under.
_EVIDENTLY = {"RocAuc": "roc_auc", "Precision": "precision", "Recall": "recall", "F1Score": "f1",
              "LogLoss": "log_loss", "Accuracy": "accuracy"}


class PerformanceInputError(ValueError):
    """The predictions or outcomes of a day cannot be joined or scored."""


@dataclass(frozen=True)
class Coverage:
    scored_rows: int
    labelled_rows: int
    coverage: float  # labelled / scored, 0 when nothing was scored
    enough: bool
    reason: str


def label_coverage(scored_rows: int, labelled_rows: int, min_coverage: float, min_rows: int) -> Coverage:
    """Whether a day has enough labels for its performance to mean something: both a share of
    the scored rows and an absolute number (a 100% covered day of 3 rows says nothing)."""
    if scored_rows < 0 or labelled_rows < 0 or labelled_rows > scored_rows:
        raise PerformanceInputError(f"labelled rows ({labelled_rows}) must be between 0 and the scored rows ({scored_rows})")
    cov = labelled_rows / scored_rows if scored_rows else 0.0
    short = []
    if cov < min_coverage:
        short.append(f"label coverage {cov:.1%} < {min_coverage:.0%}")
    if labelled_rows < min_rows:
        short.append(f"{labelled_rows} labelled rows < {min_rows}")
    reason = "; ".join(short) or f"label coverage {cov:.1%} ({labelled_rows}/{scored_rows} rows)"
    return Coverage(scored_rows, labelled_rows, cov, not short, reason)


def join_outcomes(predictions: pd.DataFrame, outcomes: pd.DataFrame, entity: str, timestamp: str,
                  label: str = LABEL) -> pd.DataFrame:
    """Served predictions with their label (NaN where none arrived yet), one row per prediction.

    `outcomes` holds (entity, timestamp, label); the same row labelled twice with the same value
    counts once, with two different values it is an error (the label source must decide)."""
    need_p = [entity, timestamp, SCORE, VERSION]
    need_o = [entity, timestamp, label]
    for name, frame, need in (("predictions", predictions, need_p), ("outcomes", outcomes, need_o)):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise PerformanceInputError(f"{name} lack column(s) {missing}; they have {list(frame.columns)}")
    out = outcomes[need_o].rename(columns={label: LABEL})
    labels = pd.to_numeric(out[LABEL], errors="coerce")
    bad = out[labels.isna() | ~labels.isin([0, 1])] if len(out) else out
    if len(bad):
        raise PerformanceInputError(f"outcomes hold {len(bad)} label(s) that are not 0/1, e.g. "
                                    f"{bad.head(3).to_dict('records')}")
    out = out.assign(**{LABEL: labels.astype("int8")}).drop_duplicates()
    clash = out[out.duplicated([entity, timestamp], keep=False)]
    if len(clash):
        raise PerformanceInputError(f"{clash[[entity, timestamp]].drop_duplicates().shape[0]} row(s) carry two different "
                                    f"labels, e.g. {clash.head(4).to_dict('records')}")
    preds = predictions[need_p].copy()
    for frame in (preds, out):
        frame[timestamp] = pd.to_datetime(frame[timestamp])
    joined = preds.merge(out, on=[entity, timestamp], how="left", validate="many_to_one")
    if joined[SCORE].isna().any():
        raise PerformanceInputError(f"{int(joined[SCORE].isna().sum())} prediction(s) have no score")
    joined[VERSION] = joined[VERSION].astype(str)
    return joined


def figures(y_true, y_prob, threshold: float = THRESHOLD) -> dict[str, float]:
    """The project's own maths for one group of labelled predictions (both classes needed)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return {
        "roc_auc": m.roc_auc(y, p),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": m.f1_at(y, p, threshold),
        "log_loss": m.log_loss(y, p),
        "brier": m.brier(y, p),
        "ece": m.expected_calibration_error(y, p),
        "positive_rate": float(y.mean()),
        "mean_score": float(p.mean()),
        "rows": float(len(y)),
    }


def evidently_figures(labelled: pd.DataFrame, html_path: str | os.PathLike | None = None,
                      snapshot_path: str | os.PathLike | None = None,
                      html_lib_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Evidently 0.7's ClassificationPreset on (label, score); writes its HTML (sharing the
    JavaScript in `html_lib_dir` when given) and its compact snapshot when asked (see
    monitoring/drift.write_report). Returns its figures under the project's names."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    frame = labelled[[LABEL, SCORE]].astype({LABEL: int, SCORE: float}).reset_index(drop=True)
    definition = DataDefinition(
        classification=[BinaryClassification(target=LABEL, prediction_probas=SCORE)],
        numerical_columns=[SCORE], categorical_columns=[LABEL], text_columns=[], datetime_columns=[],
        unknown_columns=[], list_columns=[])
    snapshot = Report([ClassificationPreset(probas_threshold=THRESHOLD)]).run(
        Dataset.from_pandas(frame, data_definition=definition), None)
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = str(metric.get("config", {}).get("type", "")).rsplit(":", 1)[-1]
        if kind in _EVIDENTLY and not isinstance(metric["value"], dict):
            found[_EVIDENTLY[kind]] = float(metric["value"])
    missing = sorted(set(_EVIDENTLY.values()) - set(found))
    if missing:
        raise RuntimeError(f"Evidently's ClassificationPreset reported no {missing}: has its snapshot layout changed?")
    if html_path is not None or snapshot_path is not None:
        write_report(snapshot, html_path=html_path, snapshot_path=snapshot_path, html_lib_dir=html_lib_dir)
    return found


@dataclass(frozen=True)
class VersionPerformance:
    version: str
    labelled_rows: int
    figures: dict[str, float] | None  # None when the labels hold a single class
    holdout_roc_auc: float | None  # None when the version's holdout figures are unknown
    note: str = ""

    @property
    def roc_auc_drop(self) -> float | None:
        if self.figures is None or self.holdout_roc_auc is None:
            return None
        return self.holdout_roc_auc - self.figures["roc_auc"]


@dataclass(frozen=True)
class Verdict:
    evaluated: bool  # False: too few labels (or one class) to judge; `passed` is then True
    passed: bool
    description: str
    worst_drop: float | None = None
    failing_versions: list[str] = field(default_factory=list)


def tolerance_verdict(day: str, coverage: Coverage, versions: list[VersionPerformance], max_drop: float,
                      min_rows: int) -> Verdict:
    """performance_within_tolerance: every model version that served at least `min_rows`
    labelled rows of the day keeps its ROC AUC within `max_drop` of its own holdout ROC AUC."""
    if not coverage.enough:
        return Verdict(False, True, f"{day}: not evaluated yet, {coverage.reason}")
    judged = [v for v in versions if v.labelled_rows >= min_rows and v.roc_auc_drop is not None]
    if not judged:
        notes = "; ".join(f"v{v.version}: {v.note or f'{v.labelled_rows} labelled rows'}" for v in versions)
        return Verdict(False, True, f"{day}: not evaluated, no model version with {min_rows}+ labelled rows of "
                                    f"both classes and holdout figures ({notes})")
    failing = [v for v in judged if v.roc_auc_drop > max_drop]
    worst = max(judged, key=lambda v: v.roc_auc_drop)
    parts = [f"v{v.version}: ROC AUC {v.figures['roc_auc']:.3f} vs holdout {v.holdout_roc_auc:.3f} "
             f"(drop {v.roc_auc_drop:+.3f}, {v.labelled_rows} rows)" for v in judged]
    word = "exceeds" if failing else "within"
    return Verdict(True, not failing, f"{day}: {'; '.join(parts)}; worst drop {worst.roc_auc_drop:+.3f} {word} "
                                      f"tolerance {max_drop}", worst.roc_auc_drop, [v.version for v in failing])


def per_version(joined: pd.DataFrame, holdout_roc_auc: dict[str, float | None]) -> list[VersionPerformance]:
    """Figures of each model version that served the day, on its labelled rows."""
    out = []
    labelled = joined[joined[LABEL].notna()]
    for version in sorted(joined[VERSION].unique(), key=_version_order):
        rows = labelled[labelled[VERSION] == version]
        holdout = holdout_roc_auc.get(version)
        if rows.empty or rows[LABEL].nunique() < 2:
            out.append(VersionPerformance(version, len(rows), None, holdout,
                                          "labels of a single class: ROC AUC undefined" if len(rows) else "no labels"))
            continue
        note = "" if holdout is not None else "holdout ROC AUC unknown"
        out.append(VersionPerformance(version, len(rows), figures(rows[LABEL], rows[SCORE]), holdout, note))
    return out


def _version_order(v: Any):
    return (0, int(v), "") if str(v).isdigit() else (1, 0, str(v))
