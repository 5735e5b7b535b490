"""Test helpers for alerts: a Slack-compatible webhook receiver on 127.0.0.1, a URL where
nothing listens, and a reader of the JSON-lines alert file."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A Slack-compatible webhook: records every JSON body, answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0):
        self.bodies, self.fail_first, self.requests = [], fail_first, 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ok = receiver.requests > receiver.fail_first
                if ok:
                    receiver.bodies.append(body)
                self.send_response(200 if ok else 500)
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more: connection refused


def read_alerts(path):
    return [json.loads(line) for line in path.read_text().splitlines()]
