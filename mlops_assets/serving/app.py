"""Online scoring of a use case's champion over HTTP (starlette, run by uvicorn).

  POST /predict   {"rows": [{column: value, ...}, ...]}  ->  {"model_version", "scores", ...}
                  rows shaped like a landing file's rows (features computed by the use case's
                  dbt SQL, features.py) or rows with every feature column; a use case with a
                  segment column scores each row by its segment's champion, else the global
                  one, and answers the version of each row ("model_versions")
  GET  /version   the version served and when it was loaded
  GET  /health    200 while a model is loaded, with the poller's last error if any
"""
from __future__ import annotations

import contextlib
import logging
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_assets.evaluation import tasks
from mlops_assets.serving.features import FeatureSQLError, LandingSpec
from mlops_assets.serving.holder import ChampionHolder, frame_from_columns
from mlops_assets.serving.segments import answer_routed
from mlops_assets.simulate import shipped
from mlops_assets.serving.validation import (
    MAX_BYTES_DEFAULT,
    MAX_ROWS_DEFAULT,
    FeatureSpec,
    PayloadError,
    feature_columns,
    has_features,
    parse_payload,
)

FEATURE_ROWS, LANDING_ROWS = "feature rows", "landing rows"


def request_columns(body: bytes, spec: FeatureSpec, max_rows: int,
                    landing: LandingSpec | None = None) -> tuple[dict[str, list], str]:
    """The feature columns of a request body and the shape its rows had: rows with every
    feature are scored as they are; other rows are landing rows when the server has the
    use case's features SQL (``landing``)."""
    rows = parse_payload(body, max_rows)
    if landing is None or has_features(rows, spec):
        return feature_columns(rows, spec), FEATURE_ROWS
    return landing.columns_of(rows), LANDING_ROWS


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 before it is read when Content-Length says it is too
    big, and while it is read when more bytes arrive than allowed (chunked or lying clients).
    Also refuses a declared charset other than UTF-8 (415)."""
    content_type = request.headers.get("content-type", "")
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in content_type.split(";")[1:]
                    if p.strip().lower().startswith("charset=")), None)
    if charset not in (None, "utf-8", "utf8"):
        raise PayloadError(415, f"Content-Type charset {charset!r} is not supported: send UTF-8 JSON")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise PayloadError(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > max_bytes:
            raise PayloadError(413, f"body of {int(declared)} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            await _drain(stream, max_bytes)
            raise PayloadError(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


log = logging.getLogger(__name__)

# After a body went over the limit, the rest of it is read and dropped (at most this much more,
# for at most this long) before the 413 goes out: a client that writes its whole body before it
# reads the response then gets the 413 instead of a reset connection.
DRAIN_FACTOR = 8
DRAIN_SECONDS = 10.0


async def _drain(stream, max_bytes: int) -> None:
    limit, deadline = DRAIN_FACTOR * max_bytes, time.monotonic() + DRAIN_SECONDS
    dropped = 0
    async for chunk in stream:
        dropped += len(chunk)
        if dropped > limit or time.monotonic() > deadline:
            return


def create_app(holder: ChampionHolder, max_rows: int = MAX_ROWS_DEFAULT, poll: bool = True,
               max_bytes: int = MAX_BYTES_DEFAULT, landing: LandingSpec | None = None) -> Starlette:
    """``landing``: the use case's features SQL, so that landing-shaped rows are accepted."""
    spec = holder.spec

    async def predict(request: Request) -> Response:
        try:
            body = await read_body(request, max_bytes)
            # Decoding and parsing up to max_bytes is CPU work: off the event loop, like scoring.
            columns, shape = await run_in_threadpool(request_columns, body, spec, max_rows, landing)
        except PayloadError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except FeatureSQLError as exc:  # the features SQL itself failed: the server's problem
            log.error("features of a request: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=500)
        except ClientDisconnect:
            # The client went away before its body was complete: nobody to answer, nothing wrong here.
            client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
            log.info(f"{client} disconnected before sending its whole request body")
            return Response(status_code=400)
        served = holder.current  # read once: the version reported is the model that scored
        started = time.perf_counter()
        # Prediction is CPU-bound: keep it off the event loop so /health stays responsive.
        frame = await run_in_threadpool(frame_from_columns, columns, spec)
        if served.segments:
            answer = await run_in_threadpool(answer_routed, holder.task, frame, holder.segment_column,
                                             (served.version, served.model), served.segments)
        else:
            prediction = await run_in_threadpool(tasks.predict, holder.task, served.model, frame)
            answer = tasks.serving_answer(holder.task, prediction)
        return JSONResponse({
            "model_name": served.name,
            "model_version": served.version,
            # binary: "scores" (P(1)); regression: "predictions"; multiclass: labels, classes, probabilities
            **answer,
            "rows": len(frame),
            "input": shape,
            "predict_ms": round((time.perf_counter() - started) * 1000, 3),
        })

    async def version(_: Request) -> JSONResponse:
        served = holder.current
        return JSONResponse({"model_name": served.name, "model_version": served.version,
                             "loaded_at": served.loaded_at, "load_seconds": round(served.load_seconds, 3),
                             "swaps": holder.swaps,
                             **({"segment_versions": served.segment_versions()} if holder.segment_column else {})})

    async def health(_: Request) -> JSONResponse:
        served = holder.current
        return JSONResponse({"status": "ok", "model_name": served.name, "model_version": served.version,
                             "last_checked": holder.last_checked, "last_refresh_error": holder.last_error,
                             "features": list(spec.columns),
                             "landing_columns": list(landing.row_columns) if landing else None})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if poll:
            holder.start_polling()
        try:
            yield
        finally:
            holder.stop_polling()

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/version", version),
                             Route("/health", health)], lifespan=lifespan)


def _use_case(use_case: str | None):
    """The use case to serve: the one named, else the only one (or churn, the demo's)."""
    from mlops_assets.use_cases.loader import UseCaseError, get_use_case, load_use_cases

    if use_case is None:
        ucs = load_use_cases()
        names = [uc.name for uc in ucs]
        if len(ucs) == 1 or "churn" in names:
            return ucs[0] if len(ucs) == 1 else ucs[names.index("churn")]
        raise SystemExit(f"name the use case to serve, one of {names}")
    try:
        return get_use_case(use_case)
    except UseCaseError as exc:
        raise SystemExit(str(exc)) from None


def feature_spec(uc) -> FeatureSpec:
    return FeatureSpec(tuple(uc.features.numeric), tuple(uc.features.categorical))


def example_rows(uc, n: int = 2) -> list[dict]:
    """Landing-shaped rows for a request: the first rows of the use case's newest landing file,
    else (a shipped demo use case) rows of its simulator, else rows of empty values with the columns
    the features SQL reads (which compiles it)."""
    import json

    import duckdb

    from mlops_assets.ingest.landing import reader_sql

    folder = uc.landing.path()
    files = sorted(folder.glob(uc.landing.pattern), key=lambda p: p.stat().st_mtime, reverse=True) \
        if folder.is_dir() else []
    frame = None
    for path in files:
        try:
            with duckdb.connect(":memory:") as con:
                frame = con.execute(f"SELECT * FROM {reader_sql(path)} LIMIT {int(n)}").df()
            break
        except Exception:  # noqa: BLE001 - an unreadable file: the loader reports it; try the next
            continue
    if frame is None and uc.name in shipped.SIMULATORS:
        sim = shipped.simulator(uc.name)
        cfg = sim.SimulationConfig()
        frame = sim.simulate_day(cfg.start_date, cfg).head(n)
    if frame is None:
        landing = compile_landing(uc)
        if landing is None:
            return [{c: None for c in uc.features.all}] * n
        return [{c: (0 if c in uc.features.numeric else "" if c in uc.features.categorical else None)
                 for c in landing.row_columns} for _ in range(n)]
    # Through JSON as pandas writes it: NaN -> null, timestamps as ISO 8601, numpy -> numbers.
    # The target is left out: a client asks for a score because it does not know the outcome.
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() == uc.target_column.lower()])
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def compile_landing(uc, log=None) -> LandingSpec | None:
    from mlops_assets.serving.features import compile_landing_spec

    return compile_landing_spec(uc, feature_spec(uc), log=log)


def example(use_case: str | None = None, features: bool = False) -> str:
    """A request body for ``use_case``: landing rows, or (``features``) the same rows with
    their features computed, as MLflow's scoring server takes them (``dataframe_records``)."""
    import json

    uc = _use_case(use_case)
    rows = example_rows(uc)
    if not features:
        return json.dumps({"rows": rows}, indent=1)
    landing = compile_landing(uc)
    records = landing.feature_records(rows) if landing else [{c: r.get(c) for c in uc.features.all} for r in rows]
    return json.dumps({"dataframe_records": records}, indent=1)


def serve(use_case: str, port: int, host: str = "127.0.0.1", poll_seconds: float = 5.0,
          max_rows: int = MAX_ROWS_DEFAULT) -> None:
    """Load the champion of ``use_case`` and serve it until interrupted."""
    import uvicorn

    from mlops_assets import settings
    from mlops_assets.governance.registry import RegistryError

    uc = _use_case(use_case)
    holder = ChampionHolder(uc.registered_model_name, feature_spec(uc), settings.mlflow_tracking_uri(), poll_seconds,
                            task=uc.task, segment_column=uc.segment_column)
    try:
        holder.refresh()
    except RegistryError as exc:
        raise SystemExit(f"cannot serve {uc.name}: {exc}. Promote a model first (materialize "
                         f"{uc.name}/champion_model).") from exc

    def say(msg: str) -> None:
        print(f"[mlops-assets] {msg}", flush=True)

    try:
        landing = compile_landing(uc, log=say)
    except FeatureSQLError as exc:
        landing = None
        say(f"WARNING: landing rows are refused, only rows with every feature column are scored: {exc}")
    say(f"serving {uc.registered_model_name} v{holder.current.version} on http://{host}:{port} "
        f"(polling the champion alias every {poll_seconds:g}s); a request body: "
        f"mlops-assets serve {uc.name} --example")
    uvicorn.run(create_app(holder, max_rows, landing=landing), host=host, port=port, log_level="warning")
