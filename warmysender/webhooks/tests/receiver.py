"""A webhook receiver on loopback for the tests: records every request and checks its signature
with the verification recipe the product documentation gives receivers, verbatim."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# --- the seeds' Python recipe, verbatim (docs/webhooks.md repeats it) ---------------------------
# fmt: off
def verify(secret, signature_header, body):
    parts = dict(p.split('=', 1) for p in signature_header.split(','))
    payload = parts['t'] + '.' + body
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts['v1'], expected)
# fmt: on
# -------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until the test releases it (or 30 s pass)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


class Receiver:
    """Answers with `replies` in order (the last one repeats once they run out)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.requests: list[Received] = []
        self.replies: list[Reply] = [Reply()]
        self.release = threading.Event()
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                )
                reply = (
                    receiver.replies.pop(0) if len(receiver.replies) > 1 else receiver.replies[0]
                )
                if reply.hang:
                    receiver.holding.set()
                    receiver.release.wait(30)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender gave up on us

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
