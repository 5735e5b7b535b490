"""The typed readers of values handed between assets fail loudly, naming what is missing."""
import datetime as dt

import dagster as dg
import pytest

from mlops_assets.chain import handoffs


def test_training_window_reader():
    md = {handoffs.TRAIN_START: "2026-01-01", handoffs.TRAIN_END: "2026-01-10",
          handoffs.HOLDOUT_START: "2026-01-11", handoffs.HOLDOUT_END: dg.MetadataValue.text("2026-01-17"),
          handoffs.TRAINING_DIGEST: "abc"}
    window = handoffs.read_training_window(md)
    assert window.holdout_end == dt.date(2026, 1, 17) and window.digest == "abc"
    with pytest.raises(handoffs.HandoffError, match=r"churn/training_set lacks metadata \['holdout_end'\]"):
        handoffs.read_training_window({k: v for k, v in md.items() if k != handoffs.HOLDOUT_END},
                                      "churn/training_set")
    with pytest.raises(handoffs.HandoffError, match="not YYYY-MM-DD"):
        handoffs.read_training_window({**md, handoffs.TRAIN_START: "last week"})


def test_labelled_rows_reader():
    per_day = dg.MetadataValue.json({"2026-01-02": 7})
    assert handoffs.read_labelled_rows({handoffs.RAW_LABELLED_ROWS: 30, handoffs.RAW_ROWS_PER_DAY: per_day},
                                       "2026-01-02") == 7
    assert handoffs.read_labelled_rows({handoffs.RAW_LABELLED_ROWS: 30}, "2026-01-02") == 30
    with pytest.raises(handoffs.HandoffError, match=r"raw 2026-01-02 lacks metadata \['labelled_rows'\]"):
        handoffs.read_labelled_rows({"rows": 30}, "2026-01-02", "raw 2026-01-02")


def test_drift_verdict_reader():
    md = handoffs.drift_check_metadata(0.4, 0.3)
    assert handoffs.read_drift_verdict("2026-01-02", False, md).drift_share == 0.4
    with pytest.raises(handoffs.HandoffError, match="no result for 2026-01-02"):
        handoffs.read_drift_verdict("2026-01-02", None, None)
