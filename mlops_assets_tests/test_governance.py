"""Model governance end to end, on small real data: real DuckDB, dbt, MLflow registry (SQLite
in a temporary folder) and Dagster instance; the server runs as a real process on loopback.

One module-scoped platform is built once (simulate 20 days, raw -> features -> first champion);
each test reads the registry's current state rather than assuming an order.
"""
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import httpx
import pytest

from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets_tests.ports import free_port

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)
DAYS = 20
MODEL = "churn_model"
TRAINING_CHAIN = [["churn", "candidate_model"], ["churn", "model_evaluation"], ["churn", "champion_model"]]
ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "MLOPS_USE_CASE_DIRS",
            "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_MLFLOW_UI_URL")


class Platform:
    def __init__(self, root, defs, instance):
        self.root, self.defs, self.instance = root, defs, instance
        repo = defs.get_repository_def()
        self.assets = list(repo.assets_defs_by_key.values())

    def materialize(self, keys, shuffle_labels=False, partition_key=None):
        run_config = {"ops": {"churn__candidate_model": {"config": {"shuffle_labels": shuffle_labels}}}} \
            if ["churn", "candidate_model"] in keys else None
        return dg.materialize(self.assets, selection=[dg.AssetKey(k) for k in keys],
                              instance=self.instance, run_config=run_config, partition_key=partition_key,
                              raise_on_error=False)

    def ingest(self, first: dt.date, last: dt.date):
        """raw -> stg -> features for the days first..last in one run (a partition range when
        those assets are daily-partitioned, a plain run otherwise)."""
        keys = [dg.AssetKey(["churn", k]) for k in ("raw", "stg_churn", "features_churn")]
        partitioned = self.defs.get_repository_def().assets_defs_by_key[keys[0]].partitions_def is not None
        tags = {"dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat()} if partitioned else None
        return dg.materialize(self.assets, selection=keys, instance=self.instance, tags=tags, raise_on_error=False)

    def client(self):
        from mlops_assets.chain.resources import MlflowResource

        return MlflowResource.from_settings().client()

    def champion(self):
        from mlops_assets.governance import registry

        return registry.champion_version(self.client(), MODEL)

    def metadata(self, *key):
        event = self.instance.get_latest_materialization_event(dg.AssetKey(list(key)))
        assert event is not None, f"{key} was never materialized"
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}, event.run_id


@pytest.fixture(scope="module")
def platform(tmp_path_factory, dbt_manifest):
    root = tmp_path_factory.mktemp("governance") / "data"
    with pytest.MonkeyPatch.context() as mp:
        for k in ENV_KEYS:
            mp.setenv(k, "")  # so that leaving the module also deletes what the runs set meanwhile
            mp.delenv(k)
        mp.setenv("MLOPS_DATA_DIR", str(root))
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        mp.setenv("MLOPS_MLFLOW_UI_URL", "http://mlflow.example:5000/")
        (root / "dagster_home").mkdir(parents=True)
        write_days(root / "landing" / "churn", day_range(D0, DAYS), SimulationConfig(rows_per_day=300))
        from mlops_assets.definitions import build_defs

        # Settings are read when definitions are built: build them after pointing the env here.
        defs = build_defs()
        with dg.DagsterInstance.get() as instance:
            p = Platform(root, defs, instance)
            ingest = p.ingest(D0, D0 + dt.timedelta(days=DAYS - 1))
            assert ingest.success, "loading raw data and building features failed"
            first = p.materialize([["churn", "training_set"], *TRAINING_CHAIN])
            assert first.success, "the first run (training set -> first champion) failed"
            p.first_run_id = first.run_id
            yield p


def _failed_checks(result) -> dict[str, str]:
    return {e.asset_check_evaluation_data.asset_check_key.name: e.asset_check_evaluation_data.description
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed}


def test_first_candidate_is_registered_with_provenance_and_promoted_on_absolute_quality(platform):
    from mlops_assets.governance import registry

    cand, run_id = platform.metadata("churn", "candidate_model")
    assert run_id == platform.first_run_id
    version = cand["registered_version"]
    assert cand["mlflow_model_version_url"] == f"http://mlflow.example:5000/#/models/{MODEL}/versions/{version}"
    mv = platform.client().get_model_version(MODEL, version)
    assert mv.tags[registry.TAG_DAGSTER_RUN] == platform.first_run_id
    # 20 days, the last 7 held out: training rows are days 1..13
    assert (mv.tags[registry.TAG_WINDOW_START], mv.tags[registry.TAG_WINDOW_END]) == ("2026-01-01", "2026-01-13")
    assert mv.tags[registry.TAG_CODE_VERSION].startswith("0.1.0")
    assert mv.tags[registry.TAG_MANIFEST_HASH] == registry.dbt_manifest_hash()
    assert len(mv.tags[registry.TAG_MANIFEST_HASH]) == 16

    evaluation, _ = platform.metadata("churn", "model_evaluation")
    assert evaluation["champion_version"] == "none"
    assert evaluation["gate_verdicts"]["no_regression_vs_champion"]["passed"] is True
    assert "no champion yet" in evaluation["gate_verdicts"]["no_regression_vs_champion"]["description"]
    champ, _ = platform.metadata("churn", "champion_model")
    assert champ["promoted"] is True and champ["previous_champion"] == "none"
    assert platform.champion() == version == champ["champion_version"]
    # The "first model" case is explicit, naming the registry: an empty registry is also what a
    # lost MLflow store looks like.
    uri = platform.client().tracking_uri
    assert evaluation["comparison"] == champ["comparison"] == f"first model: no champion in registry {uri}"
    warnings = [e.user_message for e in platform.instance.all_logs(platform.first_run_id)
                if e.level == logging.WARNING and "first model: no champion in registry" in e.user_message]
    assert len(warnings) == 2 and all(uri in w for w in warnings)
    # the promotion records the holdout quality the champion had
    assert float(mv.tags[registry.TAG_PROMOTED_ROC_AUC]) == pytest.approx(evaluation["holdout_roc_auc"], abs=1e-5)
    # the signature declares no integer input (a served NaN cannot be an integer; MLflow's hint)
    from mlflow.models import get_model_info

    inputs = get_model_info(f"models:/{MODEL}/{version}").signature.inputs.to_dict()
    assert inputs and not [c["name"] for c in inputs if c["type"] in ("integer", "long")]


def test_degraded_candidate_is_refused_and_champion_stays(platform):
    before = platform.champion()
    result = platform.materialize(TRAINING_CHAIN, shuffle_labels=True)
    assert not result.success
    degraded = platform.metadata("churn", "candidate_model")[0]["registered_version"]
    failed = _failed_checks(result)
    # Labels carry no signal: worse than the minimum and than the champion by far.
    assert {"meets_minimum_quality", "no_regression_vs_champion", "no_slice_regression"} <= set(failed)
    assert f"vs champion v{before}" in failed["no_regression_vs_champion"]
    assert "beyond the allowed" in failed["no_regression_vs_champion"]
    # the blocking checks stopped the promotion step in this run
    assert not [e for e in result.all_events if e.is_step_success and e.step_key == "churn__champion_model"]
    assert platform.champion() == before

    evaluation, _ = platform.metadata("churn", "model_evaluation")
    assert evaluation["candidate_version"] == degraded and evaluation["champion_version"] == before
    # the comparison is a table with a schema (issue 8 #5), not Markdown
    vs = evaluation["vs_champion"]
    assert [c.name for c in vs.schema.columns] == ["metric", "candidate", "champion", "delta", "verdict"]
    assert {r.data["metric"]: r.data for r in vs.records}["roc_auc"]["verdict"] == "worse"

    # Materializing the promotion on its own must refuse too, naming the failed gates.
    alone = platform.materialize([["churn", "champion_model"]])
    assert not alone.success
    (failure,) = [e for e in alone.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert f"v{degraded} NOT promoted" in message
    assert "no_regression_vs_champion failed" in message and "meets_minimum_quality failed" in message
    assert platform.champion() == before


def test_at_least_as_good_candidate_is_promoted_and_records_previous(platform):
    from mlops_assets.governance import registry

    before = platform.champion()
    result = platform.materialize(TRAINING_CHAIN)
    assert result.success, _failed_checks(result)
    new = platform.metadata("churn", "candidate_model")[0]["registered_version"]
    evaluation, _ = platform.metadata("churn", "model_evaluation")
    assert evaluation["champion_version"] == before
    # same code, data and seed as the champion: the comparison shows no loss
    assert all(v["passed"] for v in evaluation["gate_verdicts"].values())
    assert platform.champion() == new != before
    assert platform.client().get_model_version(MODEL, new).tags[registry.TAG_PREVIOUS_CHAMPION] == before

    # MLflow artifact with the per-metric and per-slice comparison
    path = platform.client().download_artifacts(evaluation["mlflow_run_id"], "evaluation/champion_challenger.json",
                                                str(platform.root))
    comparison = json.loads(open(path).read())
    assert comparison["champion_version"] == before
    assert {s["column"] for s in comparison["slices"]} == {"plan_type", "contract"}

    # re-running the promotion alone is a no-op, not a failure
    again = platform.materialize([["churn", "champion_model"]])
    assert again.success and platform.metadata("churn", "champion_model")[0]["promoted"] is False


def test_rollback_restores_the_previous_champion(platform):
    from mlops_assets.cli import main
    from mlops_assets.governance import registry

    current = platform.champion()
    previous = platform.client().get_model_version(MODEL, current).tags.get(registry.TAG_PREVIOUS_CHAMPION)
    if not previous:  # this test may run alone: make a promotion to roll back from
        assert platform.materialize(TRAINING_CHAIN).success
        current, previous = platform.champion(), current
    assert main(["rollback", "churn"]) == 0
    assert platform.champion() == previous
    # an unproven version (never champion) is refused
    degraded = platform.materialize([["churn", "candidate_model"]], shuffle_labels=True)
    unproven = platform.metadata("churn", "candidate_model")[0]["registered_version"]
    assert degraded.success
    with pytest.raises(SystemExit, match="never champion"):
        main(["rollback", "churn", "--to-version", unproven])
    assert main(["rollback", "churn", "--to-version", current]) == 0
    assert platform.champion() == current


def test_batch_predictions_score_a_day_with_the_champion_and_replace_it(platform):
    champion = platform.champion()
    day = "2026-01-18"
    for attempt in range(2):
        result = platform.materialize([["churn", "batch_predictions"]], partition_key=day)
        assert result.success
    meta, _ = platform.metadata("churn", "batch_predictions")
    assert meta["model_version"] == champion and meta["rows_replaced"] == 300
    with duckdb.connect(str(platform.root / "warehouse.duckdb"), read_only=True) as con:
        per_day = con.execute("SELECT CAST(event_ts AS DATE)::VARCHAR, count(*), count(DISTINCT model_version), "
                              "min(score), max(score) FROM predictions.churn GROUP BY 1").fetchall()
        features_rows = con.execute("SELECT count(*) FROM main.features_churn WHERE CAST(event_ts AS DATE) = ?",
                                    [day]).fetchone()[0]
    assert len(per_day) == 1
    (got_day, rows, versions, lo, hi) = per_day[0]
    assert (got_day, rows, versions) == (day, features_rows, 1) and features_rows == 300
    assert 0.0 <= lo < hi <= 1.0


def test_backfill_with_a_pinned_model_version(platform):
    """Re-scoring an old day with a fixed version, champion untouched."""
    champion = platform.champion()
    pinned = "1"
    result = dg.materialize(
        platform.assets, selection=[dg.AssetKey(["churn", "batch_predictions"])], instance=platform.instance,
        partition_key="2026-01-17", tags={"mlops/model_version": pinned}, raise_on_error=False)
    assert result.success
    meta, _ = platform.metadata("churn", "batch_predictions")
    assert (meta["model_version"], meta["pinned_version"], meta["unpromoted_version_allowed"]) == (pinned, True, False)
    assert platform.champion() == champion
    with duckdb.connect(str(platform.root / "warehouse.duckdb"), read_only=True) as con:
        versions = con.execute("SELECT DISTINCT model_version FROM predictions.churn "
                               "WHERE CAST(event_ts AS DATE) = '2026-01-17'").fetchall()
    assert versions == [(pinned,)]


def _score_pinned(platform, version, day="2026-01-16", tags=None, config=None):
    run_config = {"ops": {"churn__batch_predictions": {"config": config}}} if config else None
    return dg.materialize(
        platform.assets, selection=[dg.AssetKey(["churn", "batch_predictions"])], instance=platform.instance,
        partition_key=day, tags={"mlops/model_version": version, **(tags or {})}, run_config=run_config,
        raise_on_error=False)


def test_a_pinned_version_that_was_never_champion_is_refused_unless_allowed(platform):
    unproven_run = platform.materialize([["churn", "candidate_model"]], shuffle_labels=True)
    assert unproven_run.success
    unproven = platform.metadata("churn", "candidate_model")[0]["registered_version"]
    scored = dg.AssetKey(["churn", "batch_predictions"])
    before = platform.instance.get_latest_materialization_event(scored)

    refused = _score_pinned(platform, unproven)
    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert f"pinned version {unproven}" in message and f"{MODEL} v{unproven} was never champion" in message
    assert "allow_unpromoted" in message
    missing = _score_pinned(platform, "999", config={"model_version": "999", "allow_unpromoted": True})
    assert not missing.success
    assert f"{MODEL} has no version 999" in [e for e in missing.all_events if e.is_step_failure][0] \
        .event_specific_data.error.message
    # the refused runs materialized nothing
    after = platform.instance.get_latest_materialization_event(scored)
    assert (after and after.run_id) == (before and before.run_id)

    for how in ({"tags": {"mlops/allow_unpromoted": "true"}},
                {"config": {"model_version": unproven, "allow_unpromoted": True}}):
        allowed = _score_pinned(platform, unproven, **how)
        assert allowed.success, how
        meta, run_id = platform.metadata("churn", "batch_predictions")
        assert (meta["model_version"], meta["pinned_version"], meta["unpromoted_version_allowed"]) == (unproven, True, True)
        assert any(e.level == logging.WARNING and f"v{unproven} although it was never champion" in e.user_message
                   for e in platform.instance.all_logs(run_id))


# ---------------------------------------------------------------- serving

@pytest.fixture
def server(platform):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlops_assets.cli", "serve", "churn", "--port", str(port),
                             "--poll-seconds", "0.5"], env={**os.environ}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {proc.stdout.read()}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _feature_rows(platform, n):
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    with duckdb.connect(str(platform.root / "warehouse.duckdb"), read_only=True) as con:
        df = con.execute(f"SELECT * FROM main.features_churn LIMIT {n}").df()
    return uc, json.loads(df[uc.features.all].to_json(orient="records"))


def test_server_answers_with_champion_swaps_on_promotion_and_rejects_bad_payloads(platform, server):
    uc, rows = _feature_rows(platform, 1000)
    champion = platform.champion()
    assert httpx.get(f"{server}/version").json()["model_version"] == champion

    one = httpx.post(f"{server}/predict", json={"rows": rows[:1]}, timeout=10)
    assert one.status_code == 200 and one.json()["model_version"] == champion and len(one.json()["scores"]) == 1
    batch = httpx.post(f"{server}/predict", json=rows, timeout=30).json()
    assert len(batch["scores"]) == 1000 and all(0.0 <= s <= 1.0 for s in batch["scores"])

    bad = {
        "not json": b"{rows: oops",
        "empty body": b"",
        "empty rows": json.dumps({"rows": []}).encode(),
        "missing column": json.dumps({"rows": [{k: v for k, v in rows[0].items() if k != "tenure_months"}]}).encode(),
        "wrong type": json.dumps({"rows": [{**rows[0], "plan_type": 3}]}).encode(),
    }
    for what, body in bad.items():
        r = httpx.post(f"{server}/predict", content=body, timeout=10)
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        assert r.json()["error"], what
    assert "tenure_months" in httpx.post(f"{server}/predict", content=bad["missing column"]).json()["error"]
    assert "plan_type" in httpx.post(f"{server}/predict", content=bad["wrong type"]).json()["error"]

    # A bounded loop of requests runs while a new version is trained, evaluated and promoted.
    seen, errors, stop = [], [], threading.Event()

    def hammer():
        with httpx.Client(base_url=server, timeout=10) as c:
            for _ in range(5000):
                if stop.is_set():
                    return
                try:
                    r = c.post("/predict", json={"rows": rows[:20]})
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text}")
                    else:
                        seen.append(r.json()["model_version"])
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        result = platform.materialize(TRAINING_CHAIN)
        assert result.success, _failed_checks(result)
        promoted = platform.champion()
        assert promoted != champion
        deadline = time.monotonic() + 30
        while httpx.get(f"{server}/version").json()["model_version"] != promoted:
            assert time.monotonic() < deadline, "server did not switch to the promoted version within 30 s"
            time.sleep(0.2)
        n_after = len(seen)
        while len(seen) < n_after + 20 and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert seen[0] == champion and seen[-1] == promoted
    # the switch happens once: no request answered by the old version after the new one
    first_new = seen.index(promoted)
    assert set(seen[:first_new]) == {champion} and set(seen[first_new:]) == {promoted}
