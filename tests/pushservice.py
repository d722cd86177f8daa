"""A push service of the tests' own, on 127.0.0.1, that does what a real one does.

It checks the VAPID `Authorization: vapid t=<JWT>, k=<key>` header (ES256 signature made with
the `k=` key, `aud` equal to the endpoint's origin, `exp` in the future and at most 24 h
away), decrypts the aes128gcm body with the fake device's private key and auth secret
(http_ece + cryptography), records the message, and answers 201 — or what a test queued for
that device: another status (404, 410, 429, 500, a redirect) with Retry-After or Location, an
answer trickled one byte at a time, or none at all (the connection held open).
"""

import base64
import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One browser: a P-256 key pair and an auth secret, as a real user agent makes them."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    responses: deque = field(default_factory=deque)
    received: list = field(default_factory=list)

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def subscription_json(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    def answer(
        self,
        status: int,
        retry_after: str | None = None,
        times: int = 1,
        *,
        location: str | None = None,
        trickle_s: float | None = None,
    ) -> None:
        """Queue answers other than 201 for the next requests to this device; with
        `trickle_s` the answer goes out one byte every `trickle_s` seconds."""
        for _ in range(times):
            self.responses.append(
                {
                    "status": status,
                    "retry_after": retry_after,
                    "location": location,
                    "trickle_s": trickle_s,
                }
            )

    def hang(self, times: int = 1) -> None:
        """Read the next requests and never answer them (until the service closes)."""
        for _ in range(times):
            self.responses.append({"hang": True})

    def payloads(self) -> list[dict]:
        return [m["payload"] for m in self.received]


@dataclass
class Received:
    device: str
    payload: dict
    headers: dict


class PushService:
    """Threaded HTTP server. `mode` "up" answers as above, "down" answers 503 to everything;
    with `hold_after` set, requests past that many acceptances are held until `release`."""

    def __init__(self):
        self.devices: dict[str, Device] = {}
        self.errors: list[str] = []
        self.requests = 0
        self.last_accepted_at = 0.0
        self.mode = "up"
        self.accepted: list[dict] = []  # every decrypted payload answered 201, in order
        self.refused = 0  # answered 503 because the service was down
        self.hold_after: int | None = None
        self.held_count = 0
        self.held = threading.Event()  # set once a request is being held
        self.trickled = 0  # trickled answers sent to the end (nobody cut them)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def device(self) -> Device:
        device_id = b64url(os.urandom(9))
        device = Device(
            id=device_id,
            endpoint=f"{self.origin}/push/{device_id}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=os.urandom(16),
        )
        self.devices[device_id] = device
        return device

    def all_payloads(self) -> list[dict]:
        return [p for d in self.devices.values() for p in d.payloads()]

    # --- checks a real push service makes -------------------------------------------------

    def check_vapid(self, header: str) -> str | None:
        """None when the VAPID header is valid for this service, else why not."""
        if not header.lower().startswith("vapid "):
            return "no vapid scheme"
        parts = dict(p.strip().split("=", 1) for p in header[6:].split(",") if "=" in p)
        token, key = parts.get("t"), parts.get("k")
        if not token or not key:
            return "t= or k= missing"
        try:
            head_b64, claims_b64, sig_b64 = token.split(".")
            head = json.loads(unb64url(head_b64))
            claims = json.loads(unb64url(claims_b64))
            sig = unb64url(sig_b64)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        except (ValueError, KeyError) as exc:
            return f"malformed: {exc}"
        if head.get("alg") != "ES256" or len(sig) != 64:
            return "not ES256"
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except Exception:
            return "bad signature"
        if claims.get("aud") != self.origin:
            return f"wrong aud {claims.get('aud')}"
        now = time.time()
        exp = claims.get("exp", 0)
        if not (now < exp <= now + 24 * 3600):
            return "exp out of range"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "bad sub"
        return None

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, retry_after: str | None = None, **extra):
                if extra.get("hang"):
                    with service.lock:
                        service.held_count += 1
                    service.held.set()
                    service.release.wait(timeout=60)
                    return None
                if extra.get("trickle_s"):
                    return self._trickle(status, extra["trickle_s"])
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                if extra.get("location"):
                    self.send_header("Location", extra["location"])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _trickle(self, status: int, every_s: float):
                raw = f"HTTP/1.1 {status} Slow\r\nContent-Length: 0\r\n\r\n".encode()
                for i in range(len(raw)):
                    if service.release.wait(timeout=every_s):
                        return None
                    try:
                        self.wfile.write(raw[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return None  # the sender gave up: what a deadline does
                with service.lock:
                    service.trickled += 1
                return None

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with service.lock:
                    service.requests += 1
                if service.hold_after is not None and len(service.accepted) >= service.hold_after:
                    with service.lock:
                        service.held_count += 1
                    service.held.set()
                    service.release.wait(timeout=30)
                    return None  # no answer: the sender cannot know whether it arrived
                if service.mode == "down":
                    with service.lock:
                        service.refused += 1
                    return self._reply(503, "60")
                device = service.devices.get(self.path.rsplit("/", 1)[-1])
                if device is None:
                    return self._reply(404)
                if device.responses:
                    answer = dict(device.responses.popleft())
                    status, retry_after = answer.pop("status", 0), answer.pop("retry_after", None)
                    return self._reply(status, retry_after, **answer)
                problem = service.check_vapid(self.headers.get("Authorization", ""))
                if problem is None and self.headers.get("Content-Encoding") != "aes128gcm":
                    problem = "not aes128gcm"
                if problem is None and self.headers.get("TTL") is None:
                    problem = "no TTL"
                if problem is not None:
                    service.errors.append(problem)
                    return self._reply(403 if "vapid" in problem or "sig" in problem else 400)
                try:
                    plain = http_ece.decrypt(
                        body,
                        private_key=device.private_key,
                        auth_secret=device.auth_secret,
                        version="aes128gcm",
                    )
                    payload = json.loads(plain)
                except Exception as exc:
                    service.errors.append(f"decrypt: {exc}")
                    return self._reply(400)
                with service.lock:
                    device.received.append(
                        {
                            "payload": payload,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "at": time.perf_counter(),
                        }
                    )
                    service.accepted.append(payload)
                service.last_accepted_at = time.perf_counter()
                self.send_response(201)
                self.send_header("Location", f"{service.origin}/m/{len(device.received)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


@pytest.fixture(name="push_service")
def push_service_fixture(app):
    service = PushService()
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = True
    yield service
    service.close()
    assert not service.errors, service.errors


def subscribe(user, device: Device):
    """Register `device` for `user` directly in the database (no HTTP)."""
    from fieldapp.extensions import db
    from fieldapp.models import PushSubscription

    sub = PushSubscription(
        user_id=user.id, endpoint=device.endpoint, p256dh=device.p256dh, auth=device.auth
    )
    db.session.add(sub)
    db.session.flush()
    return sub
