"""Servers on 127.0.0.1 for the outbound tests: a recorder, a trickler, a test CA for TLS.

Every one listens on loopback only and answers what the test asks; nothing leaves the machine.
"""

import datetime
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Recorder:
    """Records every request (method, path, headers, body, when) and answers `status`."""

    def __init__(self, status: int = 200, headers: dict | None = None):
        self.status = status
        self.headers = headers or {}
        self.requests: list[dict] = []
        self.got = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "at": time.perf_counter(),
                    }
                )
                recorder.got.set()
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def json_bodies(self) -> list:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CertificateAuthority:
    """A certificate authority made for one test run, and server certificates it signs."""

    def __init__(self, tmp_path):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fieldapp test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.tmp_path = tmp_path
        self.ca_file = tmp_path / "test-ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A TLS server context whose certificate names `names` (hosts and IP addresses)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file = self.tmp_path / f"server-{abs(hash(names))}.pem"
        key_file = self.tmp_path / f"server-{abs(hash(names))}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context


class Trickler:
    """Accepts connections and answers one byte every `every_s` seconds, for ever.

    With `tls` the handshake completes first (the answer trickles inside TLS); with
    `trickle_handshake` the server's very first bytes (its TLS hello) trickle too.
    """

    def __init__(self, every_s: float = 1.0, tls: ssl.SSLContext | None = None):
        self.every_s = every_s
        self.tls = tls
        self.connections = 0
        self.bytes_sent = 0
        self.closed_by_client = threading.Event()
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            head = self._read_until(conn, b"", lambda got: b"\r\n\r\n" in got)
            if head is None:
                return
            # Read the body too: closing with unread bytes makes the kernel send a reset,
            # which can discard the answer before the client has read it.
            headers, _, body = head.partition(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", headers)
            wanted = int(match.group(1)) if match else 0
            if self._read_until(conn, body, lambda got: len(got) >= wanted) is None:
                return
            answer = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
            for i in range(len(answer)):
                if self._stop.wait(self.every_s):
                    return
                conn.sendall(answer[i : i + 1])
                self.bytes_sent += 1
        except OSError:
            self.closed_by_client.set()
        finally:
            conn.close()

    def _read_until(self, conn, got: bytes, enough) -> bytes | None:
        """Bytes read until `enough(bytes)` or a stop; None when the client closed first."""
        while not enough(got) and not self._stop.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return None
            got += chunk
        return got

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
