"""Online scoring of a use case's champion over HTTP (starlette, run by uvicorn).

  POST /predict   {"rows": [{feature: value, ...}, ...]}  ->  {"model_version", "scores", ...}
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

from mlops_assets.serving.holder import ChampionHolder, frame_from_columns
from mlops_assets.serving.validation import (
    MAX_BYTES_DEFAULT,
    MAX_ROWS_DEFAULT,
    FeatureSpec,
    PayloadError,
    parse_rows,
)


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
               max_bytes: int = MAX_BYTES_DEFAULT) -> Starlette:
    spec = holder.spec

    async def predict(request: Request) -> Response:
        try:
            body = await read_body(request, max_bytes)
            # Decoding and parsing up to max_bytes is CPU work: off the event loop, like scoring.
            columns = await run_in_threadpool(parse_rows, body, spec, max_rows)
        except PayloadError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ClientDisconnect:
            # The client went away before its body was complete: nobody to answer, nothing wrong here.
            client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
            log.info(f"{client} disconnected before sending its whole request body")
            return Response(status_code=400)
        served = holder.current  # read once: the version reported is the model that scored
        started = time.perf_counter()
        # predict_proba is CPU-bound: keep it off the event loop so /health stays responsive.
        scores = await run_in_threadpool(lambda: served.model.predict_proba(frame_from_columns(columns, spec))[:, 1])
        return JSONResponse({
            "model_name": served.name,
            "model_version": served.version,
            "scores": [float(s) for s in scores],
            "rows": len(scores),
            "predict_ms": round((time.perf_counter() - started) * 1000, 3),
        })

    async def version(_: Request) -> JSONResponse:
        served = holder.current
        return JSONResponse({"model_name": served.name, "model_version": served.version,
                             "loaded_at": served.loaded_at, "load_seconds": round(served.load_seconds, 3),
                             "swaps": holder.swaps})

    async def health(_: Request) -> JSONResponse:
        served = holder.current
        return JSONResponse({"status": "ok", "model_name": served.name, "model_version": served.version,
                             "last_checked": holder.last_checked, "last_refresh_error": holder.last_error,
                             "features": list(spec.columns)})

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


def serve(use_case: str, port: int, host: str = "127.0.0.1", poll_seconds: float = 5.0,
          max_rows: int = MAX_ROWS_DEFAULT) -> None:
    """Load the champion of ``use_case`` and serve it until interrupted."""
    import uvicorn

    from mlops_assets import settings
    from mlops_assets.governance.registry import RegistryError
    from mlops_assets.use_cases.config import load_use_cases

    ucs = {uc.name: uc for uc in load_use_cases()}
    if use_case not in ucs:
        raise SystemExit(f"unknown use case {use_case!r}; known: {sorted(ucs)}")
    uc = ucs[use_case]
    holder = ChampionHolder(uc.registered_model_name,
                            FeatureSpec(tuple(uc.features.numeric), tuple(uc.features.categorical)),
                            settings.mlflow_tracking_uri(), poll_seconds)
    try:
        holder.refresh()
    except RegistryError as exc:
        raise SystemExit(f"cannot serve {use_case}: {exc}. Promote a model first (materialize "
                         f"{use_case}/champion_model).") from exc
    print(f"[mlops-assets] serving {uc.registered_model_name} v{holder.current.version} on http://{host}:{port} "
          f"(polling the champion alias every {poll_seconds:g}s)", flush=True)
    uvicorn.run(create_app(holder, max_rows), host=host, port=port, log_level="warning")
