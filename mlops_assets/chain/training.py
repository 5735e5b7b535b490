"""training_set and candidate_model for each use case."""

import datetime as dt
import hashlib
import json
import time

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import after_upstream
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.chain.lineage import CANDIDATE, LABELS, TRAINING_SET, features_key, key, latest_metadata
from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
from mlops_assets.training import data
from mlops_assets.chain.history import TRIGGER_TAG
from mlops_assets.use_cases.config import UseCase
from mlops_assets.governance import registry

TRAINING_SET_SOURCES = ("training/data.py", "training/split.py", "chain/training.py")
CANDIDATE_SOURCES = ("training/pipeline.py", "training/data.py", "evaluation/metrics.py", "chain/training.py")


def code_version(uc: UseCase, sources: tuple[str, ...], *settings_parts) -> str:
    """Changes when the code computing the asset, or the use-case settings it uses, change."""
    config = hashlib.sha256(json.dumps([p.model_dump(mode="json") if hasattr(p, "model_dump") else p
                                        for p in settings_parts], sort_keys=True, default=str).encode())
    return f"{asset_metadata.source_code_version(*sources)}-{config.hexdigest()[:8]}"



def build_training_set(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, TRAINING_SET),
        pool=WAREHOUSE_POOL,  # writes the training table (mlops_assets/instance/concurrency.py)
        # Without a dbt model the training set joins the label files itself (data.features_source).
        deps=[features_key(uc), *([key(uc, LABELS)] if uc.labels and not uc.features.dbt_model else [])],
        group_name=uc.name,
        kinds={"duckdb", "pandas"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("training", uc.name),
        code_version=code_version(uc, TRAINING_SET_SOURCES, uc.split, uc.features, uc.target_column,
                                  uc.timestamp_column, uc.entity_column),
        description=f"Time-based split of {uc.features_table}: the last {uc.split.holdout_days} day(s) are the "
                    f"holdout, the {uc.split.training_window_days or 'all'} day(s) before them the training rows. "
                    f"Built by {uc.name}_retrain_schedule ({uc.retrain.cron}) and {uc.name}_retrain_sensor.",
    )
    def training_set(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        # A retrain fired by drift learns from the drifted days (training/split.recent_slice_split).
        learn_recent = context.run.tags.get(TRIGGER_TAG) == "drift"
        with warehouse.connect(read_only=True) as con:
            try:
                frame, info = data.build_frame(con, uc, learn_recent=learn_recent)
            except ValueError as exc:
                raise dg.Failure(f"cannot build the training set of {uc.name} from {uc.features_table}: {exc}") from exc
        with warehouse.connect() as con:
            data.write_frame(con, uc, frame)
            columns = asset_metadata.duckdb_column_schema(con, data.training_table(uc))
        context.log.info(f"training set: {info.train_rows} train rows {info.train_start}..{info.train_end}, "
                         f"{info.holdout_rows} holdout rows {info.holdout_start}..{info.holdout_end}")
        window = handoffs.TrainingWindow(*(dt.date.fromisoformat(str(d)) for d in (
            info.train_start, info.train_end, info.holdout_start, info.holdout_end)), digest=data.frame_digest(frame))
        return dg.MaterializeResult(metadata={
            handoffs.ROW_COUNT: len(frame),
            **handoffs.training_window_metadata(window),
            handoffs.TRAINING_TABLE: data.training_table(uc),
            "dagster/column_schema": columns,
            "train_rows": info.train_rows,
            "holdout_rows": info.holdout_rows,
            "train_positive_rate": round(info.train_positive_rate, 4),
            "holdout_positive_rate": round(info.holdout_positive_rate, 4),
            "split": "recent days shared by training and holdout (drift retrain)" if learn_recent else "time-based",
        })

    return training_set


class CandidateConfig(dg.Config):
    """Run config of candidate_model. ``shuffle_labels`` trains on permuted labels, giving a
    model no better than chance: tests use it to prove the gates refuse a degraded candidate."""

    shuffle_labels: bool = False


def build_candidate_model(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, CANDIDATE),
        deps=[key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"scikitlearn", "mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("training", uc.name),
        code_version=code_version(uc, CANDIDATE_SOURCES, uc.model, uc.features, uc.target_column),
        automation_condition=after_upstream(),
        description=f"A {uc.model.family} scikit-learn Pipeline trained on the training rows, logged to MLflow "
                    f"(params, metrics, signature, input example, model) and registered as a new version of "
                    f"{uc.registered_model_name}.",
    )
    def candidate_model(context: dg.AssetExecutionContext, config: CandidateConfig, warehouse: DuckDBWarehouse,
                        mlflow: MlflowResource) -> dg.MaterializeResult:
        import mlflow as mlflow_lib
        from mlflow.models import infer_signature

        from mlops_assets.evaluation.metrics import classification_metrics
        from mlops_assets.training.pipeline import build_pipeline, skops_trusted_types

        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
        X, y = train[uc.features.all], train[uc.target_column].astype(int)
        if config.shuffle_labels:
            context.log.warning("shuffle_labels=True: training on permuted labels (a deliberately useless model)")
            y = y.sample(frac=1.0, random_state=0).set_axis(y.index)
        pipeline = build_pipeline(uc.model.family, uc.model.params, uc.features.numeric, uc.features.categorical,
                                  uc.model.preprocessing)
        window = handoffs.read_training_window(
            latest_metadata(context, key(uc, TRAINING_SET)), key(uc, TRAINING_SET).to_user_string())
        digest = window.digest

        with mlflow.start_run(f"{uc.name}-candidate", {
                "use_case": uc.name, "dagster_asset": key(uc, CANDIDATE).to_user_string(), "mlops.role": "candidate",
                "training_set_digest": digest, "shuffle_labels": str(config.shuffle_labels)}) as run:
            mlflow_lib.log_params({"model_family": uc.model.family, **uc.model.params, "train_rows": len(train),
                                   "n_features": len(uc.features.all)})
            started = time.perf_counter()
            pipeline.fit(X, y)
            fit_seconds = time.perf_counter() - started
            train_metrics = classification_metrics(y, pipeline.predict_proba(X)[:, 1])
            mlflow_lib.log_metrics({f"train_{k}": v for k, v in train_metrics.items()} | {"fit_seconds": fit_seconds})
            # Integer features are declared as doubles: a missing value in a served row is NaN, which
            # an integer column cannot hold (what MLflow's schema hint warns about); integers sent by
            # a client are still accepted (MLflow widens them).
            example = X.head(5)
            example = example.astype({c: "float64" for c in example.select_dtypes("integer").columns})
            signature = infer_signature(example, pipeline.predict_proba(example))
            info = mlflow_lib.sklearn.log_model(pipeline, name="model", signature=signature, input_example=example,
                                                pyfunc_predict_fn="predict_proba",
                                                skops_trusted_types=skops_trusted_types(pipeline))
        # Every candidate becomes a registry version; only the promotion asset moves the champion alias.
        window_start, window_end = str(window.train_start), str(window.train_end)
        version = registry.register_candidate(info.model_uri, uc.registered_model_name, {
            registry.TAG_DAGSTER_RUN: context.run.run_id,
            registry.TAG_WINDOW_START: window_start,
            registry.TAG_WINDOW_END: window_end,
            registry.TAG_CODE_VERSION: registry.code_version(),
            registry.TAG_MANIFEST_HASH: registry.dbt_manifest_hash(),
            registry.TAG_TRAINING_DIGEST: digest,
        }).version
        candidate = handoffs.CandidateModel(uc.registered_model_name, str(version), info.model_uri,
                                            run.info.run_id, run.info.experiment_id)
        url = mlflow.model_version_url(uc.registered_model_name, version)
        context.log.info(f"trained {uc.model.family} on {len(train)} rows in {fit_seconds:.1f}s; "
                         f"MLflow run {run.info.run_id}; registered {uc.registered_model_name} v{version} ({url})")
        return dg.MaterializeResult(metadata={
            **handoffs.candidate_metadata(candidate),
            "mlflow_model_version_url": dg.MetadataValue.url(url),
            "mlflow_run_url": dg.MetadataValue.url(mlflow.run_url(run.info.experiment_id, run.info.run_id)),
            # MLflow 3 logs a model as a LoggedModel with its own page (files, metrics, lineage).
            "mlflow_logged_model_url": dg.MetadataValue.url(
                mlflow.logged_model_url(run.info.experiment_id, info.model_id)),
            "data_window": f"{window_start}..{window_end}",
            "shuffle_labels": config.shuffle_labels,
            "model_family": uc.model.family,
            "train_rows": len(train),
            "fit_seconds": round(fit_seconds, 2),
            "train_roc_auc": round(train_metrics["roc_auc"], 4),
            "training_set_digest": digest,
        })

    return candidate_model
