"""Issue 8 #4-6 for training, evaluation and promotion: the candidate and evaluation hand-offs
are typed (writer and reader share one definition), the six gates live in one module with one
result type, and the evaluation's tables carry a schema."""
import dagster as dg
import pytest

from mlops_assets.chain import handoffs
from mlops_assets.evaluation import gates, report
from mlops_assets.governance import rules

CANDIDATE = handoffs.CandidateModel("churn_model", "3", "models:/m-abc", "run1", "7")
EVALUATION = handoffs.Evaluation("3", None, "first model: no champion in registry sqlite:///x", 0.81234567, 0.4)


def _as_event_metadata(md: dict) -> dict:
    """The metadata as a reader gets it back from the instance (normalized MetadataValues)."""
    return dg.AssetMaterialization(asset_key="x", metadata=md).metadata


def test_candidate_and_evaluation_round_trip_through_dagster_metadata():
    assert handoffs.read_candidate(_as_event_metadata(handoffs.candidate_metadata(CANDIDATE))) == CANDIDATE
    back = handoffs.read_evaluation(_as_event_metadata(handoffs.evaluation_metadata(EVALUATION)))
    assert back.evaluated_against is None and back.candidate_version == "3"
    assert back.holdout_roc_auc == pytest.approx(0.81235)
    against = handoffs.Evaluation("4", "3", "vs champion v3", 0.8, 0.4)
    assert handoffs.read_evaluation(handoffs.evaluation_metadata(against)).evaluated_against == "3"


def test_readers_name_the_asset_and_the_missing_key():
    md = handoffs.candidate_metadata(CANDIDATE)
    del md[handoffs.CANDIDATE_MODEL_URI]
    with pytest.raises(handoffs.HandoffError, match=r"churn/candidate_model lacks metadata \['model_uri'\]"):
        handoffs.read_candidate(md, "churn/candidate_model")
    md = handoffs.evaluation_metadata(EVALUATION)
    del md[handoffs.EVALUATED_VERSION]
    with pytest.raises(handoffs.HandoffError, match=r"churn/model_evaluation lacks metadata \['candidate_version'\]"):
        handoffs.read_evaluation(md, "churn/model_evaluation")


def test_training_window_writer_matches_its_reader():
    import datetime as dt

    w = handoffs.TrainingWindow(dt.date(2026, 1, 1), dt.date(2026, 1, 10), dt.date(2026, 1, 11),
                                dt.date(2026, 1, 17), "abc")
    assert handoffs.read_training_window(_as_event_metadata(handoffs.training_window_metadata(w))) == w


def test_the_six_gates_live_in_one_module():
    assert len(gates.ALL_GATES) == 6 and set(gates.GATE_DESCRIPTIONS) == set(gates.ALL_GATES)
    for name in ("no_regression", "no_slice_regression", "latency_within_budget", "size_within_budget",
                 "compare_metrics", "compare_slices", "ALL_GATES", "Verdict"):
        assert not hasattr(rules, name), f"governance/rules.py still defines {name}"
    # promotion reads recorded results back as the same type
    assert rules.GateResult is gates.GateResult


def test_the_evaluation_checks_are_the_gates(data_dir):
    from mlops_assets.chain.evaluation import build_model_evaluation
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    asset = build_model_evaluation(uc)
    assert [s.name for s in asset.check_specs] == list(gates.ALL_GATES)
    assert all(s.blocking for s in asset.check_specs)
    spec = asset.specs_by_key[asset.key]
    assert spec.owners and spec.tags["use_case"] == "churn" and spec.code_version


def test_code_version_follows_the_settings_it_uses(data_dir):
    from mlops_assets.chain.evaluation import build_model_evaluation
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    stricter = uc.model_copy(update={"thresholds": uc.thresholds.model_copy(update={"min_roc_auc": 0.99})})
    version = lambda u: build_model_evaluation(u).specs_by_key[build_model_evaluation(u).key].code_version  # noqa: E731
    assert version(uc) == version(uc) != version(stricter)


def test_metadata_tables_have_a_schema_and_refuse_rows_missing_a_column():
    rows = gates.compare_metrics({"roc_auc": 0.8, "f1": 0.4, "log_loss": 0.4, "brier": 0.1, "ece": 0.02}, None)
    table = report.metadata_table(report.METRICS_VS_CHAMPION_COLUMNS, rows)
    assert [c.name for c in table.schema.columns] == ["metric", "candidate", "champion", "delta", "verdict"]
    assert table.records[0].data["champion"] is None
    with pytest.raises(KeyError, match=r"row 0 lacks column\(s\) \['verdict'\]"):
        report.metadata_table(report.METRICS_VS_CHAMPION_COLUMNS, [{k: v for k, v in rows[0].items() if k != "verdict"}])
