"""The champion/challenger gates, the promotion rule and the registry's pure helpers."""
import json
import subprocess

import pytest

from mlops_assets.governance import registry, rules
from mlops_assets.governance.rules import Verdict
from mlops_assets.use_cases.config import Thresholds

T = Thresholds(max_roc_auc_drop=0.01, max_log_loss_increase=0.02, max_slice_roc_auc_drop=0.03, min_slice_rows=30,
               max_batch_latency_ms=100.0, max_model_size_mb=5.0)
CHAMP = {"roc_auc": 0.80, "f1": 0.40, "log_loss": 0.40, "brier": 0.12, "ece": 0.02}


def m(**over):
    return {**CHAMP, **over}


def test_first_model_passes_comparison_gates_without_a_champion():
    assert rules.no_regression(m(roc_auc=0.5), None, None, T).passed
    assert rules.no_slice_regression([], has_champion=False, t=T).passed


@pytest.mark.parametrize("auc, loss, passed", [
    (0.80, 0.40, True),     # equal
    (0.83, 0.38, True),     # better
    (0.791, 0.40, True),    # within the ROC AUC tolerance (-0.009)
    (0.785, 0.40, False),   # -0.015: beyond -0.01 by 0.005
    (0.80, 0.425, False),   # log loss +0.025: beyond +0.02
])
def test_no_regression_tolerance(auc, loss, passed):
    g = rules.no_regression(m(roc_auc=auc, log_loss=loss), CHAMP, "3", T)
    assert g.passed is passed
    assert g.metadata["roc_auc_delta"] == pytest.approx(auc - 0.80)


def test_regression_description_names_champion_and_margin():
    g = rules.no_regression(m(roc_auc=0.70), CHAMP, "3", T)
    assert not g.passed
    assert "champion v3" in g.description and "by 0.0900" in g.description
    assert g.metadata["roc_auc_excess"] == pytest.approx(0.09)


def _slices(cand: dict, champ: dict, rows: int = 100):
    c = {"plan": [{"value": k, "rows": rows, "positive_rate": 0.2, "roc_auc": v} for k, v in cand.items()]}
    ch = {"plan": [{"value": k, "rows": rows, "positive_rate": 0.2, "roc_auc": v} for k, v in champ.items()]}
    return rules.compare_slices(c, ch, T.min_slice_rows)


def test_one_regressing_slice_fails_the_slice_gate_even_when_others_improve():
    rows = _slices({"basic": 0.90, "premium": 0.70}, {"basic": 0.80, "premium": 0.75})
    g = rules.no_slice_regression(rows, True, T)
    assert not g.passed
    assert "plan=premium" in g.description and "-0.0500" in g.description
    assert g.metadata["slices_regressed"] == 1 and g.metadata["worst_excess"] == pytest.approx(0.02)


def test_small_or_undefined_slices_are_shown_not_judged():
    rows = _slices({"tiny": 0.2}, {"tiny": 0.9}, rows=10) + _slices({"oneclass": None}, {"oneclass": 0.8})
    assert [r["delta"] for r in rows] == [None, None]
    g = rules.no_slice_regression(rows, True, T)
    assert g.passed and "nothing to compare" in g.description


def test_slice_within_tolerance_passes():
    g = rules.no_slice_regression(_slices({"basic": 0.78}, {"basic": 0.80}), True, T)
    assert g.passed and "-0.0200" in g.description


def test_budgets():
    assert rules.latency_within_budget(99.0, 1000, T).passed
    slow = rules.latency_within_budget(130.0, 1000, T)
    assert not slow.passed and "over by 30.0 ms" in slow.description
    assert rules.size_within_budget(4.9, T).passed
    assert not rules.size_within_budget(7.5, T).passed


def test_compare_metrics_respects_direction():
    rows = {r["metric"]: r for r in rules.compare_metrics(m(roc_auc=0.82, log_loss=0.45), CHAMP)}
    assert rows["roc_auc"]["verdict"] == "better" and rows["log_loss"]["verdict"] == "worse"
    assert rows["f1"]["verdict"] == "equal"
    assert rules.compare_metrics(CHAMP, None)[0]["verdict"] == "no champion"


ALL_PASS = [Verdict(g, True) for g in rules.ALL_GATES]


def test_promotion_needs_every_gate_passed_for_this_evaluation():
    assert rules.promotion_decision(ALL_PASS, rules.ALL_GATES, "4", "3", "3").promote
    failed = [Verdict(g, g != rules.SIZE_BUDGET, "logged model 9 MB") for g in rules.ALL_GATES]
    d = rules.promotion_decision(failed, rules.ALL_GATES, "4", "3", "3")
    assert not d.promote and d.reasons == ["size_within_budget failed: logged model 9 MB"]
    missing = rules.promotion_decision(ALL_PASS[:-1], rules.ALL_GATES, "4", "3", "3")
    assert not missing.promote and "size_within_budget: no result" in missing.summary
    unknown = [Verdict(v.gate, None if v.gate == rules.NO_REGRESSION else True, "stale") for v in ALL_PASS]
    assert not rules.promotion_decision(unknown, rules.ALL_GATES, "4", "3", "3").promote


def test_promotion_refuses_a_comparison_against_a_champion_that_has_since_changed():
    d = rules.promotion_decision(ALL_PASS, rules.ALL_GATES, "4", "2", "3")
    assert not d.promote and "compared with champion v2 but the champion is now v3" in d.summary
    first = rules.promotion_decision(ALL_PASS, rules.ALL_GATES, "1", None, None)
    assert first.promote


def test_already_champion_is_a_noop():
    d = rules.promotion_decision(ALL_PASS, rules.ALL_GATES, "3", "2", "3")
    assert not d.promote and d.already_champion


def test_model_version_url(monkeypatch):
    monkeypatch.delenv(registry.UI_URL_ENV, raising=False)
    assert registry.model_version_url("churn_model", 3) == "http://127.0.0.1:5000/#/models/churn_model/versions/3"
    monkeypatch.setenv(registry.UI_URL_ENV, "https://mlflow.internal/")
    assert registry.model_version_url("m", "1") == "https://mlflow.internal/#/models/m/versions/1"


def test_manifest_hash_ignores_volatile_fields_and_sees_sql_changes(tmp_path):
    def write(checksum, generated_at):
        path = tmp_path / f"{checksum}-{generated_at}.json"
        path.write_text(json.dumps({"metadata": {"generated_at": generated_at, "invocation_id": generated_at},
                                    "nodes": {"model.p.a": {"checksum": {"checksum": checksum}, "created_at": generated_at}},
                                    "sources": {"source.p.raw.a": {}}}))
        return path

    assert registry.dbt_manifest_hash(write("aaa", "t1")) == registry.dbt_manifest_hash(write("aaa", "t2"))
    assert registry.dbt_manifest_hash(write("aaa", "t1")) != registry.dbt_manifest_hash(write("bbb", "t1"))
    assert registry.dbt_manifest_hash(tmp_path / "absent.json") == "unavailable"


def test_code_version_outside_a_git_checkout(tmp_path):
    assert "+g" not in registry.code_version(tmp_path)
    assert registry.code_version(tmp_path) == registry.code_version(tmp_path / "nope")


def test_code_version_in_a_git_checkout_names_the_commit(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "f").write_text("1")
    subprocess.run(["git", "-C", str(repo), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert registry.code_version(repo).endswith(f"+g{head}")
    (repo / "f").write_text("2")
    assert registry.code_version(repo).endswith(f"+g{head}-dirty")
