"""training_set and candidate_model for each use case."""

import time

import dagster as dg

from mlops_assets.lineage import CANDIDATE, TRAINING_SET, features_key, key
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase, load_use_cases


def build_training_set(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, TRAINING_SET),
        deps=[features_key(uc)],
        group_name=uc.name,
        kinds={"duckdb", "pandas"},
        description=f"Time-based split of {uc.features_table}: the last {uc.split.holdout_days} day(s) are the "
                    f"holdout, the {uc.split.training_window_days or 'all'} day(s) before them the training rows.",
    )
    def training_set(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        import pandas as pd

        from mlops_assets.training.split import time_split

        cols = ", ".join(f'"{c}"' for c in data.model_columns(uc))
        with warehouse.connect(read_only=True) as con:
            df = con.execute(f"SELECT {cols} FROM {uc.features_table} ORDER BY \"{uc.timestamp_column}\"").df()
        try:
            train, holdout, info = time_split(df, uc.timestamp_column, uc.target_column,
                                              uc.split.holdout_days, uc.split.training_window_days)
        except ValueError as exc:
            raise dg.Failure(f"cannot build the training set of {uc.name} from {uc.features_table}: {exc}") from exc
        frame = pd.concat([train.assign(**{data.SPLIT_COLUMN: "train"}),
                           holdout.assign(**{data.SPLIT_COLUMN: "holdout"})], ignore_index=True)
        with warehouse.connect() as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS ml")
            con.register("training_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {data.training_table(uc)} AS SELECT * FROM training_frame")
            con.unregister("training_frame")
        context.log.info(f"training set: {info.train_rows} train rows {info.train_start}..{info.train_end}, "
                         f"{info.holdout_rows} holdout rows {info.holdout_start}..{info.holdout_end}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(frame),
            **info.__dict__,
            "table": data.training_table(uc),
            "digest": data.frame_digest(frame),
        })

    return training_set


def build_candidate_model(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, CANDIDATE),
        deps=[key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"scikitlearn", "mlflow"},
        required_resource_keys={"mlflow", "warehouse"},
        description=f"A {uc.model.family} scikit-learn Pipeline trained on the training rows, logged to MLflow "
                    "(params, metrics, signature, input example, model).",
    )
    def candidate_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        warehouse: DuckDBWarehouse = context.resources.warehouse
        import mlflow
        from mlflow.models import infer_signature

        from mlops_assets.evaluation.metrics import classification_metrics
        from mlops_assets.training.pipeline import build_pipeline, skops_trusted_types

        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
        X, y = train[uc.features.all], train[uc.target_column].astype(int)
        pipeline = build_pipeline(uc.model.family, uc.model.params, uc.features.numeric, uc.features.categorical)
        split_meta = context.instance.get_latest_materialization_event(key(uc, TRAINING_SET))
        digest = split_meta.asset_materialization.metadata["digest"].value if split_meta else data.frame_digest(train)

        with mlflow.start_run(run_name=f"{uc.name}-candidate", nested=True) as run:
            mlflow.set_tags({"dagster_run_id": context.run_id, "use_case": uc.name,
                             "dagster_asset": key(uc, CANDIDATE).to_user_string(), "mlops.role": "candidate",
                             "training_set_digest": digest})
            mlflow.log_params({"model_family": uc.model.family, **uc.model.params, "train_rows": len(train),
                               "n_features": len(uc.features.all)})
            started = time.perf_counter()
            pipeline.fit(X, y)
            fit_seconds = time.perf_counter() - started
            train_metrics = classification_metrics(y, pipeline.predict_proba(X)[:, 1])
            mlflow.log_metrics({f"train_{k}": v for k, v in train_metrics.items()} | {"fit_seconds": fit_seconds})
            example = X.head(5)
            signature = infer_signature(example, pipeline.predict_proba(example))
            info = mlflow.sklearn.log_model(pipeline, name="model", signature=signature, input_example=example,
                                            pyfunc_predict_fn="predict_proba",
                                            skops_trusted_types=skops_trusted_types(pipeline))
        context.log.info(f"trained {uc.model.family} on {len(train)} rows in {fit_seconds:.1f}s; "
                         f"MLflow run {run.info.run_id}, model {info.model_uri}")
        return dg.MaterializeResult(metadata={
            "mlflow_run_id": run.info.run_id,
            "mlflow_experiment_id": run.info.experiment_id,
            "model_uri": info.model_uri,
            "model_family": uc.model.family,
            "train_rows": len(train),
            "fit_seconds": round(fit_seconds, 2),
            "train_roc_auc": round(train_metrics["roc_auc"], 4),
            "training_set_digest": digest,
        })

    return candidate_model


@dg.definitions
def defs() -> dg.Definitions:
    assets = []
    for uc in load_use_cases():
        assets += [build_training_set(uc), build_candidate_model(uc)]
    return dg.Definitions(assets=assets)
