"""The model a server answers with, and its hot swap.

A background thread polls the registry's ``champion`` alias. When it points at a new version,
that version is loaded and warmed up completely on the side, then published by replacing one
reference. A request reads the reference once and uses that model for its whole life, so a
swap never fails or mixes versions within a request in flight; assigning an attribute is atomic
in CPython, no lock is needed on the read path.

A use case with a segment column serves each segment's champion (alias `champion_<segment>`)
beside the global one; they are published together, as one reference, whenever any of them moves.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.evaluation.tasks import predict
from mlops_assets.governance import registry
from mlops_assets.serving.validation import FeatureSpec

log = logging.getLogger("mlops_assets.serving")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: Any
    loaded_at: float
    load_seconds: float
    segments: dict[str, tuple[str, Any]] = field(default_factory=dict)  # segment -> (version, model)

    def segment_versions(self) -> dict[str, str]:
        return {s: v for s, (v, _) in self.segments.items()}


class ChampionHolder:
    def __init__(self, model_name: str, spec: FeatureSpec, tracking_uri: str, poll_seconds: float = 5.0,
                 task: str = "binary", segment_column: str | None = None):
        self.model_name = model_name
        self.segment_column = segment_column  # routes rows to their segment's champion (serving/segments.py)
        self.task = task  # the use case's task: the form of the prediction (evaluation.tasks.predict)
        self.spec = spec
        self.tracking_uri = tracking_uri
        self.poll_seconds = poll_seconds
        self._current: LoadedModel | None = None
        self._refresh_lock = threading.Lock()  # one refresh at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_checked: float | None = None
        self.swaps = 0

    @property
    def current(self) -> LoadedModel:
        current = self._current
        if current is None:
            raise RuntimeError(f"no model of {self.model_name} loaded yet")
        return current

    def refresh(self) -> bool:
        """Load the champion if it differs from the one served. Returns True on a swap. Raises
        when the registry cannot be read or the new version cannot be loaded; the model being
        served is kept in that case."""
        with self._refresh_lock:
            client = registry.mlflow_client(self.tracking_uri)
            version = registry.champion_version(client, self.model_name)
            segment_versions = registry.segment_champions(client, self.model_name) if self.segment_column else {}
            self.last_checked = time.time()
            if version is None:
                raise registry.RegistryError(f"{self.model_name} has no {registry.CHAMPION_ALIAS!r} alias")
            if (self._current is not None and self._current.version == version
                    and self._current.segment_versions() == segment_versions):
                return False
            started = time.perf_counter()
            # Versions already served are reused, not loaded again.
            loaded = {} if self._current is None else {
                self._current.version: self._current.model, **{v: m for v, m in self._current.segments.values()}}

            def load(v: str):
                if v not in loaded:
                    loaded[v] = registry.load_model(self.tracking_uri, self.model_name, v)
                    # Warm-up on a row of missing values (imputed like in training): a version
                    # that cannot predict is never published.
                    predict(self.task, loaded[v], empty_row_frame(self.spec))
                return loaded[v]

            model = load(version)
            segments = {s: (v, load(v)) for s, v in segment_versions.items()}
            previous = self._current
            self._current = LoadedModel(self.model_name, version, model, time.time(), time.perf_counter() - started,
                                        segments)
            self.swaps += previous is not None
            log.warning("serving %s v%s (was %s)%s, loaded in %.2fs", self.model_name, version,
                        f"v{previous.version}" if previous else "nothing",
                        f", segments {segment_versions}" if segment_versions else "", self._current.load_seconds)
            return True

    def start_polling(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name=f"champion-poller-{self.model_name}", daemon=True)
        self._thread.start()

    def stop_polling(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep serving the current model, report on /health
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("champion refresh failed, still serving v%s: %s",
                          self._current.version if self._current else "-", self.last_error)


def empty_row_frame(spec: FeatureSpec) -> pd.DataFrame:
    return frame_from_columns({c: [None] for c in spec.columns}, spec)


def frame_from_columns(columns: dict[str, list], spec: FeatureSpec) -> pd.DataFrame:
    """DataFrame with numeric features as float64 (None -> NaN) and categorical ones as object
    (None -> NaN, which the pipeline's imputer treats as missing)."""
    data = {c: pd.Series(columns[c], dtype="float64") for c in spec.numeric}
    data |= {c: pd.Series([np.nan if v is None else v for v in columns[c]], dtype="object") for c in spec.categorical}
    return pd.DataFrame(data, columns=list(spec.columns))
