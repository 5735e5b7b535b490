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
CANDIDATE_SOURCES = ("training/pipeline.py", "training/data.py", "training/models.py", "training/estimators.py",
                     "evaluation/metrics.py", "evaluation/tasks.py", "chain/training.py")


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
    shuffle_segments: list[str] = []
    """Segment values whose own models train on permuted labels (a use case with a
    segment_column): tests use it to prove one segment's worse model is refused while the others
    are promoted."""


def build_candidate_model(uc: UseCase) -> dg.AssetsDefinition:
    specs = uc.model.specs()
    what = (f"the best of {len(specs)} candidates ({', '.join(c.name for c in uc.model.candidates)}) on a "
            f"{uc.split.validation_days}-day validation window before the holdout" if uc.model.candidates
            else f"a {uc.model.family} scikit-learn Pipeline" if uc.task == "binary" and uc.model.kind == "family"
            else f"a {uc.model.label} {uc.task} model")

    @dg.asset(
        key=key(uc, CANDIDATE),
        deps=[key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"scikitlearn", "mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("training", uc.name),
        code_version=code_version(uc, CANDIDATE_SOURCES, uc.model, uc.features, uc.target_column,
                                  *([uc.task, uc.split.validation_days, uc.primary.metric]
                                    if uc.task != "binary" or uc.model.candidates else []),
                                  *([uc.segment_column, uc.segment_min_rows] if uc.segment_column else [])),
        automation_condition=after_upstream(),
        description=f"{what[0].upper()}{what[1:]}, trained on the training rows, logged to MLflow "
                    f"(params, metrics, signature, input example, model) and registered as a new version of "
                    f"{uc.registered_model_name}."
                    + (f" One more model per value of {uc.segment_column} with at least {uc.segment_min_rows} "
                       "training rows, each a version tagged mlops.segment." if uc.segment_column else ""),
    )
    def candidate_model(context: dg.AssetExecutionContext, config: CandidateConfig, warehouse: DuckDBWarehouse,
                        mlflow: MlflowResource) -> dg.MaterializeResult:
        import mlflow as mlflow_lib

        from mlops_assets.evaluation.tasks import check_target, task_metrics, task_of
        from mlops_assets.evaluation.tasks import predict as task_predict
        from mlops_assets.training import models
        from mlops_assets.training.estimators import TrainingFunctionError

        task = task_of(uc)
        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
        try:
            y = check_target(task, train[uc.target_column], uc.target_column)
        except ValueError as exc:
            raise dg.Failure(f"cannot train {uc.name}: {exc}") from exc
        train = train.loc[y.index]
        X = train[uc.features.all]
        if config.shuffle_labels:
            context.log.warning("shuffle_labels=True: training on permuted labels (a deliberately useless model)")
            y = y.sample(frac=1.0, random_state=0).set_axis(y.index)
        window = handoffs.read_training_window(
            latest_metadata(context, key(uc, TRAINING_SET)), key(uc, TRAINING_SET).to_user_string())
        digest = window.digest

        def fit(spec, rows, target):
            try:
                return models.fit(uc, spec, rows, target)
            except TrainingFunctionError as exc:
                raise dg.Failure(f"{uc.name}: {exc}; the champion stays") from exc
            except ValueError as exc:  # a bad estimator path or parameters, named by the message
                raise dg.Failure(f"{uc.name}: cannot build model {spec.label!r}: {exc}; the champion stays") from exc

        with mlflow.start_run(f"{uc.name}-candidate", {
                "use_case": uc.name, "dagster_asset": key(uc, CANDIDATE).to_user_string(), "mlops.role": "candidate",
                "training_set_digest": digest, "shuffle_labels": str(config.shuffle_labels)}) as run:
            candidates: list[dict] = []
            spec = specs[0]
            if uc.model.candidates:
                spec, candidates, model, fit_rows = _choose(context, uc, task, mlflow, fit, train, y)
                fit_seconds = sum(c["fit_seconds"] for c in candidates)
            else:
                fit_rows = len(train)
                started = time.perf_counter()
                model = fit(spec, train, y)
                fit_seconds = time.perf_counter() - started
            mlflow_lib.log_params({**models.describe(spec), **spec.params, "task": uc.task, "train_rows": fit_rows,
                                   "n_features": len(uc.features.all),
                                   **({"candidates": len(candidates), "winner": spec.name} if candidates else {})})
            fit_x, fit_y = (X, y) if not candidates else (X.iloc[:fit_rows], y.iloc[:fit_rows])
            train_metrics = task_metrics(task, fit_y.to_numpy(), task_predict(task, model, fit_x))
            mlflow_lib.log_metrics({f"train_{k}": v for k, v in train_metrics.items()} | {"fit_seconds": fit_seconds})
            if candidates:
                mlflow_lib.log_dict({"primary_metric": task.primary_metric, "winner": spec.name,
                                     "candidates": candidates}, "candidates.json")
            # Integer features are declared as doubles: a missing value in a served row is NaN, which
            # an integer column cannot hold (what MLflow's schema hint warns about); integers sent by
            # a client are still accepted (MLflow widens them).
            example = X.head(5)
            example = example.astype({c: "float64" for c in example.select_dtypes("integer").columns})
            info = models.log_model(model, example, task)
            segment_models = (_fit_segments(context, uc, task, mlflow, fit, spec, train, y, example, config)
                              if uc.segment_column else None)
        # Every candidate becomes a registry version; only the promotion asset moves the champion alias.
        window_start, window_end = str(window.train_start), str(window.train_end)
        version_tags = {
            registry.TAG_DAGSTER_RUN: context.run.run_id,
            registry.TAG_WINDOW_START: window_start,
            registry.TAG_WINDOW_END: window_end,
            registry.TAG_CODE_VERSION: registry.code_version(),
            registry.TAG_MANIFEST_HASH: registry.dbt_manifest_hash(),
            registry.TAG_TRAINING_DIGEST: digest,
        }
        version = registry.register_candidate(info.model_uri, uc.registered_model_name, version_tags).version
        segment_meta = ({} if segment_models is None else
                        _register_segments(context, uc, mlflow, segment_models, version_tags, str(version)))
        candidate = handoffs.CandidateModel(uc.registered_model_name, str(version), info.model_uri,
                                            run.info.run_id, run.info.experiment_id)
        url = mlflow.model_version_url(uc.registered_model_name, version)
        context.log.info(f"trained {spec.label} on {fit_rows} rows in {fit_seconds:.1f}s; "
                         f"MLflow run {run.info.run_id}; registered {uc.registered_model_name} v{version} ({url})")
        primary = task.primary_metric
        return dg.MaterializeResult(metadata={
            **handoffs.candidate_metadata(candidate),
            "mlflow_model_version_url": dg.MetadataValue.url(url),
            "mlflow_run_url": dg.MetadataValue.url(mlflow.run_url(run.info.experiment_id, run.info.run_id)),
            # MLflow 3 logs a model as a LoggedModel with its own page (files, metrics, lineage).
            "mlflow_logged_model_url": dg.MetadataValue.url(
                mlflow.logged_model_url(run.info.experiment_id, info.model_id)),
            "data_window": f"{window_start}..{window_end}",
            "shuffle_labels": config.shuffle_labels,
            "model_family": spec.label,
            "train_rows": fit_rows,
            "fit_seconds": round(fit_seconds, 2),
            f"train_{primary}" if task.name != "binary" else "train_roc_auc": round(train_metrics[primary], 4),
            "training_set_digest": digest,
            **({"task": uc.task} if task.name != "binary" else {}),
            **({"winner": spec.name, "candidates": dg.MetadataValue.json(candidates)} if candidates else {}),
            **segment_meta,
        })

    return candidate_model


def _fit_segments(context, uc: UseCase, task, mlflow, fit, spec, train, y, example, config: CandidateConfig) -> dict:
    """One model per segment with at least segment_min_rows training rows, built like the global
    one (the same spec: with candidates, the winner's), each fitted on its segment's rows in a
    nested MLflow run. Returns {"own": {segment: figures and logged model}, "global": {segment:
    rows}} (segments left to the global model)."""
    import mlflow as mlflow_lib

    from mlops_assets.evaluation.tasks import check_target, task_metrics
    from mlops_assets.evaluation.tasks import predict as task_predict
    from mlops_assets.training import models
    from mlops_assets.serving.segments import segment_values

    values = segment_values(train, uc.segment_column)
    own, too_small = models.segment_plan(values, uc.segment_min_rows)
    fitted: dict[str, dict] = {}
    unfit: dict[str, str] = {}
    for segment in own:
        rows = train[values == segment]
        target = y.loc[rows.index]
        try:  # a segment whose target does not fit the task on its own (one class) keeps the global model
            check_target(task, target, uc.target_column)
        except ValueError as exc:
            unfit[segment] = str(exc)
            context.log.warning(f"segment {segment!r} uses the global model: {exc}")
            continue
        if segment in config.shuffle_segments:
            context.log.warning(f"shuffle_segments: segment {segment!r} trains on permuted labels")
            target = target.sample(frac=1.0, random_state=0).set_axis(target.index)
        with mlflow.start_run(f"{uc.name}-candidate-segment-{registry.segment_alias(segment)}", {
                "use_case": uc.name, "mlops.role": "segment_candidate", registry.TAG_SEGMENT: segment}) as run:
            started = time.perf_counter()
            model = fit(spec, rows, target)
            seconds = time.perf_counter() - started
            figures = task_metrics(task, target.to_numpy(), task_predict(task, model, rows[uc.features.all]))
            mlflow_lib.log_params({**models.describe(spec), **spec.params, "task": uc.task, "train_rows": len(rows),
                                   "segment_column": uc.segment_column, "segment": segment})
            mlflow_lib.log_metrics({f"train_{k}": v for k, v in figures.items()} | {"fit_seconds": seconds})
            info = models.log_model(model, example, task)
        fitted[segment] = {"train_rows": len(rows), "run_id": run.info.run_id, "model_uri": info.model_uri,
                           "fit_seconds": round(seconds, 3), f"train_{task.primary_metric}":
                           round(float(figures[task.primary_metric]), 5) if task.primary_metric in figures else None}
    if too_small:
        context.log.info(f"segments with fewer than {uc.segment_min_rows} training rows use the global model: "
                         + ", ".join(f"{k} ({n})" for k, n in too_small.items()))
    return {"own": fitted, "global": too_small, "unfit": unfit}


def _register_segments(context, uc: UseCase, mlflow, segment_models: dict, tags: dict, global_version: str) -> dict:
    """Register each segment's model as a version of the use case's model tagged with its
    segment; the candidate's metadata: each segment's version (read by model_evaluation) and a
    table of every segment, those left to the global model included."""
    own: dict[str, dict] = {}
    for segment, fitted in segment_models["own"].items():
        version = registry.register_candidate(fitted["model_uri"], uc.registered_model_name, {
            **tags, registry.TAG_SEGMENT: segment, "mlops.segment_column": uc.segment_column,
            "mlops.segment_of_global_version": global_version}).version
        own[segment] = {**fitted, "version": str(version)}
        context.log.info(f"segment {segment!r}: {fitted['train_rows']} rows, registered "
                         f"{uc.registered_model_name} v{version}")
    rows = [f"| {s} | {f['train_rows']} | v{f['version']} | {registry.segment_alias(s)} |" for s, f in own.items()]
    rows += [f"| {s} | {n} | global (fewer than {uc.segment_min_rows} rows) | {registry.CHAMPION_ALIAS} |"
             for s, n in segment_models["global"].items()]
    rows += [f"| {s} | - | global ({why.replace('|', '/')}) | {registry.CHAMPION_ALIAS} |"
             for s, why in segment_models["unfit"].items()]
    table = "\n".join(["| segment | train_rows | model | alias |", "|---|---|---|---|", *rows])
    return {"segment_column": uc.segment_column,
            "segment_candidates": dg.MetadataValue.json(own),
            "segments_on_global": dg.MetadataValue.json(segment_models["global"]),
            **({"segments_not_fitted": dg.MetadataValue.json(segment_models["unfit"])}
               if segment_models["unfit"] else {}),
            "segments": dg.MetadataValue.md(table)}


def _choose(context, uc: UseCase, task, mlflow, fit, train, y):
    """Fit every candidate on the training window minus its last split.validation_days days,
    score each on those days, log each as a nested MLflow run, and keep the best by the task's
    primary metric. The winner is NOT refitted on the whole window: N candidates then cost N fits
    (the issue's budget is N times one candidate's time plus 10%), and the validation days are
    only a few of the window's. Returns (winning spec, every candidate's figures, its model, rows
    it was fitted on); the figures also go to the evaluation through the candidate's metadata."""
    import mlflow as mlflow_lib

    from mlops_assets.evaluation.tasks import primary_value, task_metrics
    from mlops_assets.evaluation.tasks import predict as task_predict
    from mlops_assets.training import models
    from mlops_assets.training.split import validation_split

    try:
        fit_part, valid_part = validation_split(train, uc.timestamp_column, uc.split.validation_days)
    except ValueError as exc:
        raise dg.Failure(f"{uc.name}: {exc}") from exc
    # Rows are in time order (data.order_by), so the first rows are the fitting part.
    fit_y, valid_y = y.loc[fit_part.index], y.loc[valid_part.index]
    figures, fitted = [], {}
    for spec in uc.model.candidates:
        with mlflow.start_run(f"{uc.name}-candidate-{spec.name}", {"use_case": uc.name, "mlops.role": "candidate_choice",
                                                                  "mlops.candidate": spec.name}):
            started = time.perf_counter()
            try:
                model = fit(spec, fit_part, fit_y)
            except dg.Failure as exc:  # name the candidate beside the function or estimator it used
                raise dg.Failure(f"{uc.name}: candidate {spec.name!r}: "
                                 f"{(exc.description or '').removeprefix(f'{uc.name}: ')}") from exc
            seconds = time.perf_counter() - started
            metrics = task_metrics(task, valid_y.to_numpy(), task_predict(task, model, valid_part[uc.features.all]))
            mlflow_lib.log_params({**models.describe(spec), **spec.params, "fit_rows": len(fit_part),
                                   "validation_rows": len(valid_part)})
            mlflow_lib.log_metrics({f"validation_{k}": v for k, v in metrics.items()} | {"fit_seconds": seconds})
        fitted[spec.name] = model
        figures.append({"name": spec.name, "model": spec.label, "fit_seconds": round(seconds, 3),
                        **{f"validation_{k}": round(float(v), 5) for k, v in metrics.items()}})
        context.log.info(f"candidate {spec.name} ({spec.label}): validation {task.label()} "
                         f"{primary_value(task, metrics):.4f}")
    d = task.direction(task.primary_metric)
    best = max(figures, key=lambda f: f[f"validation_{task.primary_metric}"] * d)
    for f in figures:
        f["chosen"] = f is best
    spec = next(c for c in uc.model.candidates if c.name == best["name"])
    context.log.info(f"chose candidate {spec.name} by validation {task.label()}")
    return spec, figures, fitted[spec.name], len(fit_part)
