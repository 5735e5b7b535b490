"""The platform's CI path as a plain Python script, with no orchestrator: the baseline of
bench_vs_script.py.

Same work as the README's three `dagster asset materialize` commands, on the same landing
files: DuckDB load of every landing file; the dbt models of the use case (their SQL files,
rendered with the window vars resolved, run directly in DuckDB) and their data tests; the time
split; the use case's estimator family and hyper-parameters (read from its YAML, so it follows
changes); holdout metrics against a prior-only baseline and per slice; MLflow logging and
registration (alias `champion`) in a local store; batch predictions and an Evidently drift
report of the last day.

What a person writing this by hand would choose, and the platform may not (yet): categoricals
go to HistGradientBoosting / RandomForest as ordinal codes (native categorical support for the
former) and to linear models as sparse one-hot; `--pipeline platform` uses the platform's own
pipeline builder instead, to separate that choice from orchestration overhead.

Imports happen inside each step, so a step's time includes the imports it needs, as a
platform command's time includes its own.

    uv run python mlops_assets_tests/benchmarks/plain_pipeline.py --landing DIR --work DIR [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DBT_DIR = ROOT / "dbt_project"
# The drift report's reference is capped like the platform's (monitoring asset): Evidently's
# tests are conclusive at this size.
MAX_REFERENCE_ROWS = 50_000

# Steps, in order, and the platform command each belongs to (bench_vs_script pairs them).
STEP_GROUPS = {
    "load": "load_features", "features": "load_features", "data_tests": "load_features",
    "training_set": "training", "fit": "training", "evaluate": "training", "log_register": "training",
    "predictions": "last_day", "drift": "last_day",
}


class Steps:
    """Wall time of each step, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        steps = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                steps.seconds[name] = time.perf_counter() - self.t0
                print(f"[plain] {name:13s} {steps.seconds[name]:7.2f}s", flush=True)

        return _Timer()


# ---- SQL: the dbt models, rendered without dbt -------------------------------------------------

class Relation(str):
    """A quoted `schema.table` as `source()` returns it; `load_relation` looks it up."""

    def __new__(cls, schema: str, table: str):
        from mlops_assets.warehouse.sql import qualified

        rel = super().__new__(cls, qualified(f"{schema}.{table}"))
        rel.schema, rel.identifier = schema, table
        return rel


def render_dbt_sql(text: str, min_date: str, max_date: str, relations: dict[str, str],
                   relation_exists=lambda schema, table: False) -> str:
    """Render a dbt model or test file with the project's macros the models use (`in_window`, the portable types of
    macros/portable.sql),
    `ref`/`source` resolved to DuckDB table names and `load_relation` answered by
    `relation_exists(schema, table)`, as dbt does at execution time. Anything else undefined is
    an error, so a model that starts using a new macro breaks this baseline loudly."""
    import jinja2

    from mlops_assets.warehouse.sql import literal

    def ref(name: str) -> str:
        if name not in relations:
            raise KeyError(f"ref({name!r}): no such model in {sorted(relations)}")
        return relations[name]

    def in_window(ts_column: str) -> str:
        # The column comes from the model file itself, as with dbt's macro.
        return (f"{ts_column} >= cast({literal(min_date)} as timestamp) "
                f"and {ts_column} < cast({literal(max_date)} as timestamp)")

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(text).render(
        ref=ref, source=Relation, in_window=in_window, execute=True,
        load_relation=lambda rel: rel if relation_exists(rel.schema, rel.identifier) else None,
        var={"min_date": min_date, "max_date": max_date}.__getitem__,
        config=lambda **_: "", is_incremental=lambda: False,
        # dbt_project/macros/portable.sql as it dispatches on DuckDB
        type_double=lambda: "double precision", type_text=lambda: "varchar",
        float_ratio=lambda num, den: f"cast({num} as double precision) / greatest({den}, 1)")


def model_files(uc) -> list[Path]:
    """The use case's dbt models in dependency order (a model referring to another comes after it)."""
    import re

    folder = DBT_DIR / "models" / uc.name
    files = {p.stem: p for p in sorted(folder.glob("*.sql"))}
    deps = {name: set(re.findall(r"ref\(\s*['\"](\w+)['\"]\s*\)", p.read_text())) & set(files)
            for name, p in files.items()}
    ordered: list[str] = []
    while deps:
        ready = sorted(n for n, d in deps.items() if d <= set(ordered))
        if not ready:
            raise ValueError(f"{folder}: circular refs among {sorted(deps)}")
        ordered += ready
        for n in ready:
            del deps[n]
    return [files[n] for n in ordered]


def data_test_queries(uc, relations: dict[str, str], min_date: str, max_date: str) -> list[tuple[str, str]]:
    """(name, SQL returning failing rows) for the models' schema tests and the singular tests.
    Tests look at the window only, as the project's `+where: __day_window__` does."""
    import yaml

    from mlops_assets.warehouse.sql import ident, literal

    window = f"event_date >= cast({literal(min_date)} as date) and event_date < cast({literal(max_date)} as date)"
    queries = []
    for schema_file in sorted((DBT_DIR / "models" / uc.name).glob("*.yml")):
        for model in (yaml.safe_load(schema_file.read_text()) or {}).get("models", []):
            rel = f"(select * from {relations[model['name']]} where {window})"
            for col in model.get("columns", []):
                c = ident(col["name"])
                for test in col.get("data_tests", col.get("tests", [])):
                    kind, spec = (test, {}) if isinstance(test, str) else next(iter(test.items()))
                    name = f"{model['name']}.{col['name']}.{kind}"
                    if kind == "not_null":
                        queries.append((name, f"select * from {rel} t where {c} is null"))
                    elif kind == "unique":
                        queries.append((name, f"select {c} from {rel} t where {c} is not null group by {c} having count(*) > 1"))
                    elif kind == "accepted_values":
                        values = (spec.get("arguments") or spec)["values"]
                        allowed = ", ".join(literal(str(v)) for v in values)
                        queries.append((name, f"select * from {rel} t where cast({c} as varchar) not in ({allowed})"))
                    else:
                        raise NotImplementedError(f"{schema_file}: data test {kind!r} on {model['name']}.{col['name']} "
                                                  "has no plain-SQL equivalent here; add one to plain_pipeline.py")
    for test_file in sorted((DBT_DIR / "tests").glob("*.sql")):
        try:
            sql = render_dbt_sql(test_file.read_text(), min_date, max_date, relations)
        except KeyError:  # a test of another use case's models
            continue
        queries.append((test_file.stem, sql))
    return queries


# ---- the model -----------------------------------------------------------------------------------

def build_plain_pipeline(family: str, params: dict, numeric: list[str], categorical: list[str]):
    """The use case's estimator with the preprocessing a person would pick for its family:
    native categorical support for gradient-boosted trees, ordinal codes for forests, sparse
    one-hot and scaling for linear models. Unknown categories at scoring time become missing."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    params = dict(params)
    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    if family == "hist_gradient_boosting":
        params.setdefault("random_state", 0)
        pre = ColumnTransformer([("cat", ordinal, categorical), ("num", "passthrough", numeric)])
        est = HistGradientBoostingClassifier(categorical_features=list(range(len(categorical))) or None, **params)
    elif family == "random_forest":
        params.setdefault("random_state", 0)
        pre = ColumnTransformer([
            ("cat", make_pipeline(ordinal, SimpleImputer(strategy="constant", fill_value=-1)), categorical),
            ("num", SimpleImputer(strategy="median"), numeric)])
        est = RandomForestClassifier(**params)
    elif family == "logistic_regression":
        pre = ColumnTransformer([
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                                  OneHotEncoder(handle_unknown="ignore", sparse_output=True)), categorical),
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)])
        est = LogisticRegression(**params)
    else:
        raise ValueError(f"unknown model family {family!r}")
    return Pipeline([("preprocess", pre), ("model", est)])


def holdout_metrics(y, p) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

    return {"roc_auc": float(roc_auc_score(y, p)), "f1": float(f1_score(y, p >= 0.5)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])), "brier": float(brier_score_loss(y, p))}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- the run -----------------------------------------------------------------------------------

def run(landing: Path, work: Path, use_case: str = "churn", pipeline: str = "plain") -> dict:
    steps = Steps()
    import duckdb

    from mlops_assets.warehouse.sql import ident, literal, qualified
    from mlops_assets.use_cases.loader import load_use_cases

    ucs = {u.name: u for u in load_use_cases(strict=True)}
    if use_case not in ucs:
        raise SystemExit(f"unknown use case {use_case!r}; known: {sorted(ucs)}")
    uc = ucs[use_case]
    ts, target, feats = uc.timestamp_column, uc.target_column, uc.features.all
    work.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(work / "warehouse.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    out: dict = {"use_case": uc.name}

    with steps("load"):
        files = sorted(p for p in landing.glob(uc.landing.pattern) if not p.name.startswith("."))
        if not files:
            raise SystemExit(f"{landing}: no files match {uc.landing.pattern!r}")
        kinds = {p.suffix for p in files}
        if len(kinds) != 1 or kinds - {".csv", ".parquet"}:
            raise SystemExit(f"{landing}: expected only .csv or only .parquet files, found {sorted(kinds)}")
        paths = "[" + ", ".join(literal(str(p)) for p in files) + "]"
        reader = (f"read_parquet({paths}, filename = true, union_by_name = true)" if ".parquet" in kinds else
                  f"read_csv({paths}, header = true, auto_detect = true, sample_size = -1, filename = true, union_by_name = true)")
        con.execute(f"CREATE SCHEMA {ident(uc.raw_table.split('.')[0])}")
        con.execute(f"CREATE TABLE {qualified(uc.raw_table)} AS SELECT * EXCLUDE (filename), "
                    f"now()::TIMESTAMP AS _loaded_at, filename AS _source_file FROM {reader}")
        out["raw_rows"] = con.execute(f"SELECT count(*) FROM {qualified(uc.raw_table)}").fetchone()[0]
        first, last = con.execute(f"SELECT min({ident(ts)})::DATE, max({ident(ts)})::DATE "
                                  f"FROM {qualified(uc.raw_table)}").fetchone()
        min_date, max_date = first.isoformat(), (last + dt.timedelta(days=1)).isoformat()

    relations: dict[str, str] = {}

    def exists(schema: str, table: str) -> bool:
        return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                           [schema, table]).fetchone()[0] > 0

    with steps("features"):
        for path in model_files(uc):
            relations[path.stem] = qualified(f"main.{path.stem}")
            sql = render_dbt_sql(path.read_text(), min_date, max_date, relations, exists)
            con.execute(f"CREATE TABLE {relations[path.stem]} AS {sql}")
        features = qualified(uc.features_table)
        out["feature_rows"] = con.execute(f"SELECT count(*) FROM {features}").fetchone()[0]

    with steps("data_tests"):
        failed = {}
        for name, sql in data_test_queries(uc, relations, min_date, max_date):
            n = con.execute(f"SELECT count(*) FROM ({sql}) failing").fetchone()[0]
            if n:
                failed[name] = n
        if failed:
            raise SystemExit(f"data tests failed (failing rows): {failed}")

    with steps("training_set"):
        # Rows without a known label are scored, never trained on (as the platform does).
        labelled = f"{ident(target)} IS NOT NULL"
        days = [r[0] for r in con.execute(f"SELECT DISTINCT {ident(ts)}::DATE d FROM {features} "
                                          f"WHERE {labelled} ORDER BY d").fetchall()]
        if len(days) <= uc.split.holdout_days:
            raise SystemExit(f"need more than {uc.split.holdout_days} labelled days to hold out; {features} has {len(days)}")
        holdout_start = days[-uc.split.holdout_days]
        train_days = [d for d in days if d < holdout_start][-(uc.split.training_window_days or len(days)):]
        cols = ", ".join(ident(c) for c in [uc.entity_column, ts, *feats, target])
        frame = con.execute(f"SELECT {cols}, {ident(ts)}::DATE >= ? AS _holdout FROM {features} "
                            f"WHERE {ident(ts)}::DATE >= ? AND {labelled} ORDER BY {ident(ts)}, {ident(uc.entity_column)}",
                            [holdout_start, train_days[0]]).df()
        train, holdout = frame[~frame["_holdout"]], frame[frame["_holdout"]]
        out.update(train_rows=len(train), holdout_rows=len(holdout))

    with steps("fit"):
        if pipeline == "platform":
            from mlops_assets.training.pipeline import build_pipeline
            model = build_pipeline(uc.model.family, uc.model.params, uc.features.numeric, uc.features.categorical)
        else:
            model = build_plain_pipeline(uc.model.family, uc.model.params, uc.features.numeric, uc.features.categorical)
        model.fit(train[feats], train[target].astype(int))

    with steps("evaluate"):
        import numpy as np

        y = holdout[target].astype(int).to_numpy()
        p = model.predict_proba(holdout[feats])[:, 1]
        metrics = holdout_metrics(y, p)
        prior = np.full(len(y), train[target].mean())
        baseline = holdout_metrics(y, prior)
        slices = {}
        for col in uc.slice_columns:
            for value, idx in holdout.groupby(col).indices.items():
                if len(set(y[idx])) == 2 and len(idx) >= uc.thresholds.min_slice_rows:
                    slices[f"{col}={value}"] = holdout_metrics(y[idx], p[idx])["roc_auc"]
        # The serving budget the platform's gates check: best of 5 calls on one batch.
        batch = holdout[feats].head(uc.thresholds.latency_batch_rows)
        latency_ms = 1000 * min(_timed(lambda: model.predict_proba(batch)) for _ in range(5))
        out.update(holdout=metrics, baseline=baseline, slices=slices, batch_latency_ms=latency_ms)

    with steps("log_register"):
        import mlflow
        import skops.io as sio
        from mlflow.models import infer_signature

        store = work / "mlflow"
        (store / "artifacts").mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
        name = f"plain_{uc.name}"
        exp = mlflow.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp else mlflow.create_experiment(name, artifact_location=(store / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=exp_id, run_name=f"{uc.name}-plain"):
            mlflow.log_params({"model_family": uc.model.family, **uc.model.params, "train_rows": len(train)})
            mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()} |
                               {f"baseline_{k}": v for k, v in baseline.items()})
            example = train[feats].head(5)
            info = mlflow.sklearn.log_model(
                model, name="model", signature=infer_signature(example, model.predict_proba(example)),
                input_example=example, pyfunc_predict_fn="predict_proba",
                skops_trusted_types=sio.get_untrusted_types(data=sio.dumps(model)),
                registered_model_name=uc.registered_model_name)
        version = str(info.registered_model_version)
        model_dir = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(work / "model_copy")))
        out["model_size_mb"] = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 2**20
        mlflow.MlflowClient().set_registered_model_alias(uc.registered_model_name, "champion", version)
        out.update(model_version=version, model_uri=info.model_uri, tracking_uri=mlflow.get_tracking_uri())

    with steps("predictions"):
        import pandas as pd

        day = con.execute(f"SELECT max({ident(ts)})::DATE FROM {features}").fetchone()[0]
        rows = con.execute(f"SELECT {', '.join(ident(c) for c in [uc.entity_column, ts, *feats])} FROM {features} "
                           f"WHERE {ident(ts)}::DATE = ? ORDER BY {ident(ts)}", [day]).df()
        scored = pd.DataFrame({uc.entity_column: rows[uc.entity_column], ts: rows[ts],
                               "score": model.predict_proba(rows[feats])[:, 1], "model_version": version,
                               "scored_at": pd.Timestamp.now(tz="UTC").tz_localize(None)})
        con.execute(f"CREATE SCHEMA {ident('predictions')}")
        con.register("scored", scored)
        con.execute(f"CREATE TABLE {qualified(f'predictions.{uc.name}')} AS SELECT * FROM scored")
        con.unregister("scored")
        out.update(prediction_day=day.isoformat(), prediction_rows=len(scored))

    with steps("drift"):
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        reference = train[feats]
        if len(reference) > MAX_REFERENCE_ROWS:
            reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
        definition = DataDefinition(numerical_columns=uc.features.numeric, categorical_columns=uc.features.categorical,
                                    text_columns=[], datetime_columns=[], unknown_columns=[], list_columns=[])
        snapshot = Report([DataDriftPreset(columns=feats, drift_share=uc.thresholds.drift_share)], include_tests=True).run(
            Dataset.from_pandas(rows[feats], data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition))
        report = work / "reports" / f"drift_report_{day.isoformat()}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(report))
        drifted = next(m["value"] for m in snapshot.dict()["metrics"]
                       if m.get("config", {}).get("type") == "evidently:metric_v2:DriftedColumnsCount")
        out.update(drift_report=str(report), drift_share=float(drifted["share"]))

    con.close()
    out["steps"] = steps.seconds
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, required=True, help="folder with the landing files")
    parser.add_argument("--work", type=Path, required=True, help="new folder for the warehouse, MLflow store and report")
    parser.add_argument("--use-case", default="churn")
    parser.add_argument("--pipeline", choices=["plain", "platform"], default="plain",
                        help="plain: preprocessing chosen per family (default); platform: the platform's builder")
    parser.add_argument("--json", type=Path, default=None, help="write the results (step times, metrics, paths) here")
    args = parser.parse_args(argv)
    if args.work.exists() and any(args.work.iterdir()):
        raise SystemExit(f"{args.work} is not empty: give a new folder")
    out = run(args.landing, args.work, args.use_case, args.pipeline)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    print(f"[plain] holdout ROC AUC {out['holdout']['roc_auc']:.4f}; model v{out['model_version']}; "
          f"report {out['drift_report']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
