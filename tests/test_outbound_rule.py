"""Issue 14 #2: push endpoints and webhook URLs are vetted before the server sends anything.

Only loopback listeners are used: a listener counts every connection, and none may come.
Name resolution is patched where a test needs a name to resolve to a given address.
"""

import ipaddress
import os
import socket
import threading
import time

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from fieldapp import outbound_rule
from fieldapp.extensions import db
from fieldapp.models import PushSubscription
from fieldapp.outbound_rule import Refused, Rule
from tests.pushservice import Device


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections (and answers nothing)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, OSError):
                return count
            conn.close()
            count += 1

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    sock = Listener()
    yield sock
    sock.close()


@pytest.fixture
def resolve_to(monkeypatch):
    """Make host names resolve to the addresses a test names."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    outbound_rule.forget_resolved()
    yield answers
    outbound_rule.forget_resolved()


@pytest.fixture
def officer(make, auth, app):
    station = make.station("S")
    make.user(station, "officer", "ssrf_mj")
    db.session.commit()
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = False  # production mode
    auth.login("ssrf_mj")
    return auth


def subscription(endpoint: str) -> dict:
    """A browser's subscription JSON for `endpoint`, with real key material."""
    device = Device("x", endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
    return device.subscription_json()


def stored() -> list[str]:
    return list(db.session.scalars(sa.select(PushSubscription.endpoint)))


HOSTILE = [
    "https://127.0.0.1:{port}/",
    "https://localhost:{port}/",
    "https://[::1]:{port}/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.1.2.3:8443/",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",
    "https://0.0.0.0:{port}/",
    "https://2130706433:{port}/",
    "https://0x7f000001:{port}/",
    "https://127.1:{port}/",
    "https://0177.0.0.1:{port}/",
    "https://[::ffff:127.0.0.1]:{port}/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://224.0.0.1/",
    "https://user:pw@127.0.0.1:{port}/",
    "https://fcm.googleapis.com@127.0.0.1:{port}/",
    "https://fcm.googleapis.com:pw@127.0.0.1:{port}/",
    "https://fcm.googleapis.com\\@127.0.0.1:{port}/",
    "https://fcm.googleapis.com.evil.example/x",
    "https://evilfcm.googleapis.com/x",
    "https://notify.windows.com/x",
    "https://push.example.org/x",
    "http://fcm.googleapis.com/fcm/send/x",
    "ftp://fcm.googleapis.com/x",
    "https://fcm.googleapis.com:99999/x",
    "https://fcm.googleapis.com /x",
    "https://fcm.googleapis.com/\x00x",
    "https://ｆｃｍ.googleapis.com/x",
    "https://fcm%2egoogleapis.com/x",
    "https://-fcm.googleapis.com/x",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_registration_refuses_every_non_push_service_address(officer, listener, template):
    endpoint = template.format(port=listener.port)
    resp = officer.post_json("/api/v1/push/subscriptions", subscription(endpoint))
    assert resp.status_code == 422, resp.get_json()
    assert "endpoint" in resp.get_json()["errors"]
    assert stored() == []
    assert listener.connections() == 0


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.5"], ["127.0.0.1"], ["::1"], ["169.254.169.254"], ["142.250.1.95", "10.9.9.9"]],
)
def test_an_allowlisted_name_resolving_to_a_private_address_is_refused(
    officer, resolve_to, addresses
):
    resolve_to["fcm.googleapis.com"] = addresses
    resp = officer.post_json(
        "/api/v1/push/subscriptions", subscription("https://fcm.googleapis.com/fcm/send/abc:def")
    )
    assert resp.status_code == 422
    assert stored() == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/cXyz:APA91bHk-_x",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA%2b%2f",
        "https://web.push.apple.com/QGuQyavXuth",
        "https://FCM.googleapis.com./fcm/send/x",
    ],
)
def test_the_known_push_services_are_accepted(officer, resolve_to, endpoint):
    for host in (
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "wns2-par02p.notify.windows.com",
        "web.push.apple.com",
    ):
        resolve_to[host] = ["142.250.1.95", "2a00:1450:4001:80b::200a"]
    resp = officer.post_json("/api/v1/push/subscriptions", subscription(endpoint))
    assert resp.status_code == 201, resp.get_json()
    assert stored() == [endpoint]


def test_more_push_services_by_setting(officer, resolve_to, app):
    resolve_to["push.example.cn"] = ["203.0.113.7"]  # documentation range: not public
    resolve_to["a.push.example.cn"] = ["1.2.3.4"]
    app.config["PUSH_SERVICE_HOSTS"] = ("*.push.example.cn", "push.example.cn")
    ok = officer.post_json(
        "/api/v1/push/subscriptions", subscription("https://a.push.example.cn/x")
    )
    assert ok.status_code == 201
    # Allowlisted, but its address is not a public one: still refused.
    bad = officer.post_json("/api/v1/push/subscriptions", subscription("https://push.example.cn/x"))
    assert bad.status_code == 422


def test_a_push_service_that_does_not_resolve_now_is_kept_and_checked_at_send(officer, resolve_to):
    """Blocked DNS (push services are often unreachable in mainland China) is not a refusal."""
    resolve_to["fcm.googleapis.com"] = []
    resp = officer.post_json(
        "/api/v1/push/subscriptions", subscription("https://fcm.googleapis.com/fcm/send/zz")
    )
    assert resp.status_code == 201


def test_the_test_setting_admits_this_machine_only(app):
    rule = Rule(hosts=("fcm.googleapis.com",), allow_loopback=True)
    assert outbound_rule.vet("http://127.0.0.1:8080/push/x", rule).addresses == ("127.0.0.1",)
    assert outbound_rule.vet("http://localhost:8080/x", rule).host == "localhost"
    for url in ("http://10.0.0.1/x", "https://192.168.0.1/x", "http://fcm.googleapis.com/x"):
        with pytest.raises(Refused):
            outbound_rule.vet(url, rule)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_numeric_hosts_in_any_form_are_read_as_their_address(host, address):
    assert outbound_rule.numeric_address(host) == ipaddress.ip_address(address)
    assert outbound_rule.numeric_address("fcm.googleapis.com") is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.1",
        "233.252.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:db8::1",
    ],
)
def test_special_addresses_are_not_public(address):
    assert not outbound_rule.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "142.250.1.95", "2606:4700::1111"])
def test_public_addresses_are(address):
    assert outbound_rule.is_public(ipaddress.ip_address(address))


def test_a_resolver_that_hangs_holds_no_request_for_long(officer, monkeypatch):
    """A blocked name (DNS that never answers) costs the request RESOLVE_WAIT_S at most."""
    monkeypatch.setattr(outbound_rule, "RESOLVE_WAIT_S", 0.2)
    outbound_rule.forget_resolved()
    released = threading.Event()

    def hangs(*args, **kwargs):
        released.wait(10)
        raise socket.gaierror("timed out")

    monkeypatch.setattr(socket, "getaddrinfo", hangs)
    try:
        started = time.monotonic()
        resp = officer.post_json(
            "/api/v1/push/subscriptions", subscription("https://fcm.googleapis.com/fcm/send/hang")
        )
        took = time.monotonic() - started
    finally:
        released.set()
        outbound_rule.forget_resolved()
    assert resp.status_code == 201  # not known to be bad: vetted again before every send
    assert took < 5
