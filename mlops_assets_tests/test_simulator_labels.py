"""The simulator behaves like production (issue 9 item 3): batch files with empty targets, label
files once a day is old enough, the same labels the rows would have carried."""
import datetime as dt

import pandas as pd
import pytest

from mlops_assets.simulate.churn import (SimulationConfig, day_range, due_label_days, label_file_name,
                                         simulate_day, write_days)

D0 = dt.date(2026, 1, 1)


def test_due_days_follow_the_delay():
    days = day_range(D0, 10)
    assert due_label_days(days, D0 + dt.timedelta(days=9), 7) == day_range(D0, 3)
    assert due_label_days(days, D0 + dt.timedelta(days=9), 0) == days
    with pytest.raises(ValueError, match="0 days or more"):
        due_label_days(days, D0, -1)


def test_batch_files_without_targets_and_labels_after_the_delay(tmp_path):
    cfg = SimulationConfig(rows_per_day=50)
    feats, labs = tmp_path / "churn", tmp_path / "churn_labels"
    written = write_days(feats, day_range(D0, 10), cfg, label_folder=labs, label_delay_days=7)
    assert len(written) == 10
    assert pd.read_csv(written[-1])["churned"].isna().all()
    assert sorted(p.name for p in labs.iterdir()) == [label_file_name("churn", d) for d in day_range(D0, 3)]
    labels = pd.read_csv(labs / label_file_name("churn", D0), parse_dates=["event_ts"])
    truth = simulate_day(D0, cfg)
    assert list(labels.columns) == ["customer_id", "event_ts", "churned"]
    assert labels["churned"].tolist() == truth["churned"].tolist()
    assert labels["customer_id"].tolist() == pd.read_csv(written[0])["customer_id"].tolist()

    # the next day: one more batch file, one more label file (day 4 is now 7 days old)
    write_days(feats, [D0 + dt.timedelta(days=10)], cfg, label_folder=labs, label_delay_days=7)
    assert len(list(labs.iterdir())) == 4
    assert not any(p.name.startswith(".") for p in labs.iterdir())  # written atomically


def test_without_a_label_folder_rows_carry_their_labels(tmp_path):
    (path,) = write_days(tmp_path, [D0], SimulationConfig(rows_per_day=20))
    assert pd.read_csv(path)["churned"].notna().all()
