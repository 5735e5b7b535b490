"""Big and broken request bodies against the real server (uvicorn on loopback): a 50 MB
chunked body and a 50 MB declared one get a clean 413 with a message, on a connection that is
not reset, and a client that goes away in the middle of its body leaves no traceback in the
server's log; the server answers the next request."""
import json
import logging
import socket
import time

import httpx
import pytest

from mlops_assets.serving.app import create_app
from mlops_assets.serving.holder import ChampionHolder, LoadedModel
from mlops_assets.serving.validation import MAX_BYTES_DEFAULT
from mlops_assets_tests.dev_server import serve_app
from mlops_assets_tests.test_serving_http import ROW, SPEC, _model

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server():
    holder = ChampionHolder("test_model", SPEC, tracking_uri="unused", poll_seconds=3600)
    holder._current = LoadedModel("test_model", "7", _model(), time.time(), 0.0)
    # the default byte limit, as `mlops-assets serve` runs it
    with serve_app(create_app(holder, max_rows=100, poll=False)) as port:
        yield port


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    caplog.set_level(logging.DEBUG, logger="mlops_assets")
    return caplog


def _tracebacks(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
            or "Exception in ASGI application" in r.getMessage()]


def _still_scores(port: int) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"rows": [ROW]}, timeout=10)
    assert r.status_code == 200, r.text


def test_a_50mb_chunked_body_gets_413_not_a_reset(server, server_log):
    sent = []

    def chunks():  # no Content-Length: httpx sends it chunked, as it is produced
        for _ in range(50):
            sent.append(MB)
            yield b"x" * MB

    with httpx.Client(timeout=60) as client:
        with client.stream("POST", f"http://127.0.0.1:{server}/predict", content=chunks()) as r:
            body = r.read()
    assert r.status_code == 413, body[:200]
    assert f"exceeds the limit of {MAX_BYTES_DEFAULT} bytes" in json.loads(body)["error"]
    assert _tracebacks(server_log) == []
    _still_scores(server)


def test_a_declared_50mb_body_gets_413(server, server_log):
    r = httpx.post(f"http://127.0.0.1:{server}/predict", content=b"x" * (50 * MB), timeout=60)
    assert r.status_code == 413
    assert f"body of {50 * MB} bytes exceeds the limit of {MAX_BYTES_DEFAULT} bytes" in r.json()["error"]
    assert _tracebacks(server_log) == []
    _still_scores(server)


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_client_gone_in_the_middle_of_its_body_leaves_no_traceback(server, server_log, declared):
    with socket.create_connection(("127.0.0.1", server)) as s:
        framing = b"Content-Length: 1000000\r\n" if declared else b"Transfer-Encoding: chunked\r\n"
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" + framing + b"\r\n")
        part = b'{"rows": [' + b" " * 60000
        s.sendall(part if declared else b"%x\r\n%s\r\n" % (len(part), part))
        time.sleep(0.3)  # the app is reading the body now
    time.sleep(0.5)
    assert _tracebacks(server_log) == []
    _still_scores(server)
