"""Many use cases in one code location: generated the way bench_many_use_cases.py generates them
(one `<name>/defs.yaml` each under a folder named by MLOPS_USE_CASE_DIRS, own landing folder and
registered model), they all load, each with its own assets, sensors, jobs and schedule, and no
key, name or group is shared between two of them."""
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks" / "bench_many_use_cases.py"
N = 5
# what every generated use case (no labels section, features from the raw table) gets
CHAIN = {"raw", "training_set", "candidate_model", "model_evaluation", "champion_model", "batch_predictions",
         "drift_report", "performance_report", "monitoring_summary"}


def _bench():
    spec = importlib.util.spec_from_file_location("bench_many_use_cases", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def many(data_dir, tmp_path, monkeypatch):
    bench = _bench()
    cases = bench.write_use_cases(tmp_path / "generated", N, days=2, rows_per_day=10)
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(cases))
    return bench, [bench.use_case_name(i) for i in range(1, N + 1)], cases.parent / "landing"


def test_generated_use_cases_are_valid_and_distinct(many):
    from mlops_assets.use_cases.loader import load_all

    bench, names, _ = many
    loaded = {uc.name: uc for uc in load_all(defs_dir=None)}
    assert sorted(loaded) == names
    assert len({uc.landing.path() for uc in loaded.values()}) == N
    assert len({uc.model.registered_name for uc in loaded.values()}) == N
    for uc in loaded.values():
        assert sorted(p.name for p in uc.landing.path().glob(uc.landing.pattern)) == [
            f"{uc.name}_2026-01-01.csv", f"{uc.name}_2026-01-02.csv"]


def test_the_code_location_loads_every_generated_use_case(many, dbt_manifest):
    from mlops_assets.definitions import build_defs

    _, names, landing_root = many
    repo = build_defs().get_repository_def()
    keys = repo.asset_graph.get_all_asset_keys()
    by_prefix = Counter(k.path[0] for k in keys)
    # every key sits under exactly one use case's prefix: the demos' or a generated one's
    assert set(by_prefix) == {"churn", "demand", *names}
    for name in names:
        assert {k.path[1] for k in keys if k.path[0] == name} == CHAIN, name
        assert by_prefix[name] == len(CHAIN)
        groups = {repo.asset_graph.get(k).group_name for k in keys if k.path[0] == name}
        assert groups == {name}
        sensors = {s.name for s in repo.sensor_defs}
        assert {f"{name}_landing_sensor", f"{name}_retrain_sensor"} <= sensors
        assert {f"{name}_daily", f"{name}_training", f"{name}_monitoring_summary"} <= set(repo.job_names)
        assert f"{name}_retrain_schedule" in {s.name for s in repo.schedule_defs}
    # each landing sensor watches its own use case's folder
    for name in names:
        description = repo.get_sensor_def(f"{name}_landing_sensor").description
        assert f"Watches {landing_root / name} " in description, description
    assert len([s for s in repo.sensor_defs if s.name.endswith("_landing_sensor")]) == N + 2  # and churn, demand
