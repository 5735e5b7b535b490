"""model_evaluation: holdout metrics of the candidate vs a trivial baseline, with blocking
quality gates as asset checks."""

import dagster as dg

from mlops_assets.evaluation import gates
from mlops_assets.lineage import CANDIDATE, EVALUATION, TRAINING_SET, key, latest_metadata
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase, load_use_cases

GATES = ("meets_minimum_quality", "beats_baseline")


def build_model_evaluation(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, EVALUATION)

    @dg.asset(
        key=asset_key,
        deps=[key(uc, CANDIDATE), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"mlflow", "scikitlearn"},
        required_resource_keys={"mlflow", "warehouse"},
        check_specs=[dg.AssetCheckSpec(name, asset=asset_key, blocking=True) for name in GATES],
        description="Holdout ROC AUC, F1, log loss, Brier and calibration error of the candidate, next to a "
                    "prior-only baseline, per slice too; logged as MLflow metrics and a JSON artifact.",
    )
    def model_evaluation(context: dg.AssetExecutionContext):
        warehouse: DuckDBWarehouse = context.resources.warehouse
        import mlflow
        from sklearn.dummy import DummyClassifier

        from mlops_assets.evaluation.report import evaluation_report, markdown_table

        candidate = latest_metadata(context, key(uc, CANDIDATE), "model_uri", "mlflow_run_id")
        with warehouse.connect(read_only=True) as con:
            train = data.read_split(con, uc, "train")
            holdout = data.read_split(con, uc, "holdout")
        model = mlflow.sklearn.load_model(candidate["model_uri"])
        X, y = holdout[uc.features.all], holdout[uc.target_column].astype(int).to_numpy()
        prob = model.predict_proba(X)[:, 1]
        baseline = DummyClassifier(strategy="prior").fit(train[uc.features.all], train[uc.target_column].astype(int))
        report = evaluation_report(y, prob, baseline.predict_proba(X)[:, 1],
                                   {c: holdout[c].to_numpy() for c in uc.slice_columns})
        report["candidate"] = {"model_uri": candidate["model_uri"], "mlflow_run_id": candidate["mlflow_run_id"]}

        client = mlflow.MlflowClient()
        run_id = candidate["mlflow_run_id"]
        for name, value in report["model"].items():
            client.log_metric(run_id, f"holdout_{name}", value)
        for name, value in report["baseline"].items():
            client.log_metric(run_id, f"baseline_{name}", value)
        client.log_dict(run_id, report, "evaluation/report.json")

        m = report["model"]
        context.log.info(f"holdout ROC AUC {m['roc_auc']:.4f} (baseline {report['baseline']['roc_auc']:.4f}), "
                         f"F1 {m['f1']:.4f}, log loss {m['log_loss']:.4f}, ECE {m['ece']:.4f}")
        results = [gates.minimum_quality(m, uc.thresholds), gates.beats_baseline(m, report["baseline"], uc.thresholds)]
        yield dg.MaterializeResult(
            metadata={
                **{f"holdout_{k}": round(v, 5) for k, v in m.items()},
                **{f"baseline_{k}": round(v, 5) for k, v in report["baseline"].items()},
                "roc_auc_lift": round(report["lift"]["roc_auc"], 5),
                "calibration": dg.MetadataValue.md(markdown_table(report["calibration"])),
                **{f"slice_{c}": dg.MetadataValue.md(markdown_table(rows)) for c, rows in report["slices"].items()},
                "mlflow_run_id": run_id,
                "model_uri": candidate["model_uri"],
                "report_artifact": f"{run_id}/evaluation/report.json",
            },
            check_results=[
                dg.AssetCheckResult(check_name=g.name, passed=g.passed, description=g.description,
                                    metadata={k: float(v) for k, v in g.metadata.items()})
                for g in results
            ],
        )

    return model_evaluation


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_model_evaluation(uc) for uc in load_use_cases()])
