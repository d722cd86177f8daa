"""A local stand-in for a Web Push service on 127.0.0.1, and browser-side subscription keys.

It really decrypts what it receives (RFC 8291 aes128gcm with the subscription's private key), so
tests can count deliveries by the payload's message_id. It can be switched down (answers 503),
up (answers 201), or made to hold requests (a worker killed while waiting on it).
"""

import base64
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class BrowserKeys:
    """What a browser makes for a PushSubscription: an ECDH P-256 pair and an auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64(raw)

    @property
    def auth_b64(self) -> str:
        return _b64(self.auth)

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


class PushService:
    """Threaded HTTP server; `mode` is "up" (201), "down" (503) or "hold" (never answers)."""

    def __init__(self):
        self.mode = "up"
        # Hold every request once this many were accepted (None: never).
        self.hold_after: int | None = None
        self.keys: dict[str, BrowserKeys] = {}
        self.accepted: list[dict] = []  # decrypted payloads answered with 201
        self.refused = 0
        self.held_count = 0
        self.held = threading.Event()  # set while a request is being held
        self.release = threading.Event()
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                holding = service.hold_after is not None and (
                    len(service.accepted) >= service.hold_after
                )
                if service.mode == "hold" or holding:
                    with service.lock:
                        service.held_count += 1
                    service.held.set()
                    service.release.wait(timeout=30)
                    return
                if service.mode == "down":
                    with service.lock:
                        service.refused += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "60")
                    self.end_headers()
                    return
                keys = service.keys.get(self.path)
                payload = keys.decrypt(body) if keys else {"undecryptable": True}
                with service.lock:
                    service.accepted.append(payload)
                self.send_response(201)
                self.send_header("Location", f"{self.path}/msg{len(service.accepted)}")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def subscription_for(self, name: str) -> tuple[str, BrowserKeys]:
        """An endpoint URL on this service and the keys the 'browser' made for it."""
        path = f"/push/{name}"
        keys = BrowserKeys()
        self.keys[path] = keys
        return self.base_url + path, keys

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
