"""The champion/challenger gates, the promotion rule and the registry's pure helpers."""
import json
import subprocess

import pytest

from mlops_assets.governance import registry, rules
from mlops_assets.evaluation import gates
from mlops_assets.evaluation.gates import GateResult
from mlops_assets.use_cases.config import Thresholds

T = Thresholds(max_roc_auc_drop=0.01, max_log_loss_increase=0.02, max_slice_roc_auc_drop=0.03, min_slice_rows=30,
               max_batch_latency_ms=100.0, max_model_size_mb=5.0)
CHAMP = {"roc_auc": 0.80, "f1": 0.40, "log_loss": 0.40, "brier": 0.12, "ece": 0.02}


def m(**over):
    return {**CHAMP, **over}


def test_first_model_passes_comparison_gates_without_a_champion():
    assert gates.no_regression(m(roc_auc=0.5), None, None, T).passed
    assert gates.no_slice_regression([], has_champion=False, t=T).passed


@pytest.mark.parametrize("auc, loss, passed", [
    (0.80, 0.40, True),     # equal
    (0.83, 0.38, True),     # better
    (0.791, 0.40, True),    # within the ROC AUC tolerance (-0.009)
    (0.785, 0.40, False),   # -0.015: beyond -0.01 by 0.005
    (0.80, 0.425, False),   # log loss +0.025: beyond +0.02
])
def test_no_regression_tolerance(auc, loss, passed):
    g = gates.no_regression(m(roc_auc=auc, log_loss=loss), CHAMP, "3", T)
    assert g.passed is passed
    assert g.metadata["roc_auc_delta"] == pytest.approx(auc - 0.80)


def test_regression_description_names_champion_and_margin():
    g = gates.no_regression(m(roc_auc=0.70), CHAMP, "3", T)
    assert not g.passed
    assert "champion v3" in g.description and "by 0.0900" in g.description
    assert g.metadata["roc_auc_excess"] == pytest.approx(0.09)


def _slices(cand: dict, champ: dict, rows: int = 100):
    c = {"plan": [{"value": k, "rows": rows, "positive_rate": 0.2, "roc_auc": v} for k, v in cand.items()]}
    ch = {"plan": [{"value": k, "rows": rows, "positive_rate": 0.2, "roc_auc": v} for k, v in champ.items()]}
    return gates.compare_slices(c, ch, T.min_slice_rows)


def test_one_regressing_slice_fails_the_slice_gate_even_when_others_improve():
    rows = _slices({"basic": 0.90, "premium": 0.70}, {"basic": 0.80, "premium": 0.75})
    g = gates.no_slice_regression(rows, True, T)
    assert not g.passed
    assert "plan=premium" in g.description and "-0.0500" in g.description
    assert g.metadata["slices_regressed"] == 1 and g.metadata["worst_excess"] == pytest.approx(0.02)


def test_small_or_undefined_slices_are_shown_not_judged():
    rows = _slices({"tiny": 0.2}, {"tiny": 0.9}, rows=10) + _slices({"oneclass": None}, {"oneclass": 0.8})
    assert [r["delta"] for r in rows] == [None, None]
    g = gates.no_slice_regression(rows, True, T)
    assert g.passed and "nothing to compare" in g.description


def test_slice_within_tolerance_passes():
    g = gates.no_slice_regression(_slices({"basic": 0.78}, {"basic": 0.80}), True, T)
    assert g.passed and "-0.0200" in g.description


def test_budgets():
    assert gates.latency_within_budget(99.0, 1000, T).passed
    slow = gates.latency_within_budget(130.0, 1000, T)
    assert not slow.passed and "over by 30.0 ms" in slow.description
    assert gates.size_within_budget(4.9, T).passed
    assert not gates.size_within_budget(7.5, T).passed


def test_compare_metrics_respects_direction():
    rows = {r["metric"]: r for r in gates.compare_metrics(m(roc_auc=0.82, log_loss=0.45), CHAMP)}
    assert rows["roc_auc"]["verdict"] == "better" and rows["log_loss"]["verdict"] == "worse"
    assert rows["f1"]["verdict"] == "equal"
    assert gates.compare_metrics(CHAMP, None)[0]["verdict"] == "no champion"


ALL_PASS = [GateResult(g, True) for g in gates.ALL_GATES]


def test_promotion_needs_every_gate_passed_for_this_evaluation():
    assert rules.promotion_decision(ALL_PASS, gates.ALL_GATES, "4", "3", "3").promote
    failed = [GateResult(g, g != gates.SIZE_BUDGET, "logged model 9 MB") for g in gates.ALL_GATES]
    d = rules.promotion_decision(failed, gates.ALL_GATES, "4", "3", "3")
    assert not d.promote and d.reasons == ["size_within_budget failed: logged model 9 MB"]
    missing = rules.promotion_decision(ALL_PASS[:-1], gates.ALL_GATES, "4", "3", "3")
    assert not missing.promote and "size_within_budget: no result" in missing.summary
    unknown = [GateResult(v.name, None if v.name == gates.NO_REGRESSION else True, "stale") for v in ALL_PASS]
    assert not rules.promotion_decision(unknown, gates.ALL_GATES, "4", "3", "3").promote


def test_promotion_refuses_a_comparison_against_a_champion_that_has_since_changed():
    d = rules.promotion_decision(ALL_PASS, gates.ALL_GATES, "4", "2", "3")
    assert not d.promote and "compared with champion v2 but the champion is now v3" in d.summary
    first = rules.promotion_decision(ALL_PASS, gates.ALL_GATES, "1", None, None)
    assert first.promote


def test_already_champion_is_a_noop():
    d = rules.promotion_decision(ALL_PASS, gates.ALL_GATES, "3", "2", "3")
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


def test_a_sequence_of_slightly_worse_candidates_cannot_each_pass():
    """Each candidate is 0.006 ROC AUC below the champion, within the 0.01 tolerance: compared
    with the champion alone every one would be promoted (0.900 -> 0.870 after 5). Compared also
    with the best of the recent champions, the 3rd candidate is refused."""
    champions = {"1": m(roc_auc=0.900)}
    current, promoted, refused = "1", [], None
    for i in range(2, 7):
        candidate = m(roc_auc=champions[current]["roc_auc"] - 0.006)
        alone = gates.no_regression(candidate, champions[current], current, T)
        assert alone.passed  # the champion-only comparison lets each step through
        recent = {v: champions[v] for v in list(champions)[-gates.RECENT_CHAMPIONS:] if v != current}
        g = gates.no_regression(candidate, champions[current], current, T, recent)
        if not g.passed:
            refused = (str(i), g)
            break
        champions[str(i)] = candidate
        current = str(i)
        promoted.append(current)
    assert promoted == ["2"]
    version, g = refused
    assert version == "3"
    assert "vs v1 0.9000, the best of the last 2 champions" in g.description
    assert "-0.0120, beyond the allowed -0.01 by 0.0020" in g.description
    assert g.metadata["slide_roc_auc_excess"] == pytest.approx(0.002)
    assert g.metadata["roc_auc_excess"] == 0.0  # within tolerance of the champion itself


def test_log_loss_slide_is_bounded_too():
    recent = {"1": m(log_loss=0.40)}
    g = gates.no_regression(m(log_loss=0.435), m(log_loss=0.42), "2", T, recent)
    assert not g.passed and "log loss 0.4350 vs v1 0.4000" in g.description
    assert g.metadata["slide_log_loss_excess"] == pytest.approx(0.015)


def test_a_recent_champion_worse_than_the_current_one_changes_nothing():
    recent = {"1": m(roc_auc=0.70, log_loss=0.60)}
    with_recent = gates.no_regression(m(roc_auc=0.795), CHAMP, "2", T, recent)
    assert with_recent.passed == gates.no_regression(m(roc_auc=0.795), CHAMP, "2", T).passed is True
    assert with_recent.metadata["best_recent_roc_auc"] == 0.80


@pytest.mark.parametrize("tags, fragment", [
    (None, "churn_model has no version 9"),
    ({}, "churn_model v9 was never champion (no mlops.promoted_at tag)"),
    ({"mlops.training_set_digest": "x"}, "allow_unpromoted: true"),
])
def test_a_pinned_version_must_have_been_champion(tags, fragment):
    assert fragment in rules.pinned_version_refusal("churn_model", "9", tags)


def test_a_pinned_former_champion_is_accepted():
    assert rules.pinned_version_refusal("churn_model", "2", {registry.TAG_PROMOTED_AT: "2026-01-01T00:00:00Z"}) is None


def test_display_uri_drops_credentials():
    assert registry.display_uri("https://u:secret@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert registry.display_uri("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"


def test_recent_champions_on_a_real_registry(tmp_path):
    """Newest promotions first, at most n, versions a rollback left excluded until promoted again."""
    import mlflow

    c = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    c.create_registered_model("m")
    for _ in range(5):
        c.create_model_version("m", source=str(tmp_path / "artifact"))
    for v, when in [("1", "2026-01-01T00:00:00Z"), ("2", "2026-01-02T00:00:00Z"), ("4", "2026-01-03T00:00:00Z")]:
        c.set_model_version_tag("m", v, registry.TAG_PROMOTED_AT, when)
    c.set_registered_model_alias("m", registry.CHAMPION_ALIAS, "4")
    assert registry.recent_champions(c, "m", 5) == ["4", "2", "1"]
    assert registry.recent_champions(c, "m", 2) == ["4", "2"]
    assert registry.rollback(c, "m", "2") == ("4", "2")
    assert registry.recent_champions(c, "m", 5) == ["2", "1"]  # v4 was rolled back from
    assert registry.rollback(c, "m", "4") == ("2", "4")  # champion again: sets the bar again
    assert registry.recent_champions(c, "m", 5) == ["4", "1"]
