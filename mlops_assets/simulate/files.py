"""Files of a simulated use case: one batch file per day, and label files that come later.

Shared by every simulator (churn.py, demand.py): a simulator gives a day's rows
(`simulate_day(day, cfg)`), its target column and the columns of its label files; the
functions here name, write and date the files the same way for all of them.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

DaySimulator = Callable[[dt.date, object], pd.DataFrame]


def day_file_name(use_case: str, day: dt.date, fmt: str = "csv") -> str:
    return f"{use_case}_{day.isoformat()}.{fmt}"


def label_file_name(use_case: str, day: dt.date, fmt: str = "csv") -> str:
    return f"{use_case}_labels_{day.isoformat()}.{fmt}"


def write_atomically(df: pd.DataFrame, final: Path, fmt: str) -> Path:
    """Written under a hidden temporary name, then renamed, so a watcher never sees half a file."""
    tmp = final.parent / f".{final.name}.tmp"
    if fmt == "csv":
        df.to_csv(tmp, index=False, date_format="%Y-%m-%d %H:%M:%S")
    else:
        df.to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


def check_format(fmt: str) -> None:
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown file format {fmt!r}: expected 'csv' or 'parquet'")


def simulated_days(folder: Path, use_case: str) -> list[dt.date]:
    """The days of the simulator's batch files in a folder (other files are not ours)."""
    days = []
    for p in sorted(folder.glob(f"{use_case}_*.*")) if folder.is_dir() else []:
        try:
            days.append(dt.date.fromisoformat(p.stem.removeprefix(f"{use_case}_")))
        except ValueError:
            continue
    return sorted(set(days))


def due_label_days(days: list[dt.date], as_of: dt.date, delay_days: int) -> list[dt.date]:
    """The days whose outcomes are known `delay_days` after them, as of `as_of`."""
    if delay_days < 0:
        raise ValueError(f"label delay must be 0 days or more, got {delay_days}")
    return sorted(d for d in days if d + dt.timedelta(days=delay_days) <= as_of)


def write_due_labels(label_folder: Path, days: list[dt.date], simulate_day: DaySimulator, cfg, as_of: dt.date,
                     delay_days: int, *, use_case: str, label_columns: list[str], fmt: str = "csv") -> list[Path]:
    """Write the label file (`label_columns`) of each due day that has none yet. A day's labels
    are those simulate_day gives that day (deterministic), so they match its batch file's rows."""
    check_format(fmt)
    label_folder.mkdir(parents=True, exist_ok=True)
    written = []
    for day in due_label_days(days, as_of, delay_days):
        final = label_folder / label_file_name(use_case, day, fmt)
        if not final.exists():
            written.append(write_atomically(simulate_day(day, cfg)[label_columns], final, fmt))
    return written


def write_days(folder: Path, days: list[dt.date], simulate_day: DaySimulator, cfg, *, use_case: str,
               target: str, label_columns: list[str], fmt: str = "csv", label_folder: Path | None = None,
               label_delay_days: int = 7, as_of: dt.date | None = None) -> list[Path]:
    """Write one batch file per day (atomically). Without `label_folder` each row carries its
    label (the `target` column). With it, the target is left empty, and the labels of every day
    in the batch folder that is `label_delay_days` old as of `as_of` (default: the newest day
    written) are written to `label_folder`. Returns the batch files."""
    check_format(fmt)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for day in days:
        df = simulate_day(day, cfg)
        if label_folder is not None:  # the outcome is not known yet; the column keeps its type (nullable)
            df[target] = pd.array([pd.NA] * len(df), dtype=df[target].dtype.name.capitalize())
        written.append(write_atomically(df, folder / day_file_name(use_case, day, fmt), fmt))
    if label_folder is not None and days:
        write_due_labels(label_folder, simulated_days(folder, use_case), simulate_day, cfg, as_of or max(days),
                         label_delay_days, use_case=use_case, label_columns=label_columns, fmt=fmt)
    return written


def day_range(start: dt.date, n_days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n_days)]
