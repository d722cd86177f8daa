"""Where the server may send: the rule for push endpoints and webhook URLs.

Anyone who may register a push endpoint (every logged-in user) or a webhook URL chooses a
URL this server will POST to, so each one is vetted when it is stored and again before each
send:

- https only; no user name or password in it; printable ASCII only;
- push endpoints only on the known Web Push services (`PUSH_SERVICE_HOSTS`, extendable);
- the host is resolved, and refused when it is, or resolves to, anything but a public unicast
  address: loopback, private, link-local, shared, multicast, reserved, unspecified, and IPv6
  forms that carry such an IPv4 address. Numeric hosts in their odd forms (2130706433,
  0x7f000001, 127.1, 0177.0.0.1) are read as the address they name.

The send then connects to an address vetted here (outbound_http), never to a second DNS
answer, so a name that changes its answer between the check and the connection (rebinding)
cannot move the request. Explicit settings admit a test receiver on this machine: loopback
only (plain http too), never private networks, unless an administrator names networks for
webhooks (`WEBHOOK_ALLOW_NETWORKS`, e.g. a centre on a government intranet).
"""

import ipaddress
import re
import socket
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The Web Push services of the browsers officers use; `*.` admits any subdomain.
DEFAULT_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)
# A vetted DNS answer is reused this long: a send then costs no lookup, and a changed answer
# (rebinding) is still vetted before anything connects to it.
RESOLVE_TTL_S = 60.0
RESOLVE_WAIT_S = 2.0
_ALLOWED_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


class Refused(ValueError):
    """The URL breaks the rule; `reason` is one of REASONS."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


REASONS = ("malformed", "scheme", "userinfo", "host", "address")


@dataclass(frozen=True)
class Rule:
    """Which URLs one kind of outbound call may use."""

    hosts: tuple[str, ...] | None  # None: any host name (still only public addresses)
    allow_loopback: bool = False  # tests only: a receiver on this machine, plain http too
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class Target:
    """A vetted URL: where to connect (`addresses`) and what to ask for."""

    scheme: str
    host: str  # lower-case, as the certificate and the Host header name it
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # vetted; empty when not resolved

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def push_endpoint_pattern() -> str:
    """The endpoints the default push rule admits, as a JSON Schema pattern (documentation:
    `PUSH_SERVICE_HOSTS` may add hosts, and the address check comes on top)."""
    hosts = []
    for host in DEFAULT_PUSH_SERVICE_HOSTS:
        if host.startswith("*."):
            hosts.append(r"([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+" + re.escape(host[2:]))
        else:
            hosts.append(re.escape(host))
    path = r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*"
    return f"^https://({'|'.join(hosts)})/{path}$"


def push_rule() -> Rule:
    """Push endpoints: the Web Push services only (plus this machine when tests say so)."""
    config = current_app.config
    hosts = (*DEFAULT_PUSH_SERVICE_HOSTS, *config.get("PUSH_SERVICE_HOSTS", ()))
    return Rule(hosts=hosts, allow_loopback=bool(config.get("PUSH_ALLOW_INSECURE_ENDPOINTS")))


def webhook_rule() -> Rule:
    """Webhook URLs: any public https host (plus the networks and test setting allowed)."""
    config = current_app.config
    networks = tuple(ipaddress.ip_network(n) for n in config.get("WEBHOOK_ALLOW_NETWORKS", ()))
    return Rule(
        hosts=None,
        allow_loopback=bool(config.get("WEBHOOK_ALLOW_INSECURE_URLS")),
        networks=networks,
    )


def vet(url: str, rule: Rule, *, resolve: bool = True) -> Target:
    """The Target of `url` if `rule` admits it, else Refused.

    With `resolve`, the host's addresses are looked up and each must be admitted; a name
    that does not resolve (now) gives a Target without addresses, and `connectable` says
    whether it may be sent to.
    """
    parts = _split(url)
    host = _host_name(parts.hostname or "")
    literal = numeric_address(host)
    if literal is None and not _HOSTNAME.fullmatch(host):
        raise Refused("malformed")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and rule.allow_loopback):
        raise Refused("scheme")
    if not _host_allowed(host, literal, rule):
        raise Refused("host")
    if scheme == "http" and not _local_name(host, literal):
        raise Refused("scheme")  # plain http only ever to this machine
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if literal is not None:
        addresses = (str(literal),)
    elif resolve:
        addresses = tuple(resolve_host(host, port))
    else:
        addresses = ()
    for address in addresses:
        if not address_allowed(ipaddress.ip_address(address), rule):
            raise Refused("address")
    return Target(scheme, host if literal is None else str(literal), port, path, addresses)


def connectable(url: str, rule: Rule) -> Target:
    """Vet `url` and require at least one address to connect to (OSError when none)."""
    target = vet(url, rule)
    if not target.addresses:
        raise OSError(f"{target.host} does not resolve")
    return target


def trusted(url: str) -> Target:
    """A Target for a URL an administrator configured (the SMS gateway): resolved, any address."""
    parts = _split(url)
    if parts.scheme.lower() not in ("https", "http"):
        raise Refused("scheme")
    host = _host_name(parts.hostname or "")
    literal = numeric_address(host)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = (str(literal),) if literal is not None else tuple(resolve_host(host, port))
    if not addresses:
        raise OSError(f"{host} does not resolve")
    return Target(parts.scheme.lower(), host, port, path, addresses)


def _split(url: str):
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise Refused("malformed")
    if any(c not in _ALLOWED_CHARS for c in url):
        raise Refused("malformed")  # spaces, backslashes, control or non-ASCII characters
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise Refused("malformed") from exc
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise Refused("userinfo")
    if not parts.hostname:
        raise Refused("malformed")
    return parts


def _host_name(host: str) -> str:
    host = host.lower().rstrip(".")
    if not host or len(host) > 253:
        raise Refused("malformed")
    return host


def numeric_address(host: str) -> Address | None:
    """The address a numeric host names, in any form the C resolver accepts, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton reads 127.1, 2130706433, 0x7f000001 and 0177.0.0.1 as 127.0.0.1, and so
    # does getaddrinfo: a name made only of such parts is an address, not a name.
    if all(c in "0123456789abcdefx." for c in host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _host_allowed(host: str, literal: Address | None, rule: Rule) -> bool:
    if rule.allow_loopback and _local_name(host, literal):
        return True
    if rule.hosts is None:
        return True
    if literal is not None:
        return False  # a push service is named, never given as an address
    for pattern in rule.hosts:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _local_name(host: str, literal: Address | None) -> bool:
    if literal is not None:
        return literal.is_loopback
    return host == "localhost" or host.endswith(".localhost")


def address_allowed(address: Address, rule: Rule) -> bool:
    """True when `rule` lets a connection go to `address`."""
    if any(address in network for network in rule.networks):
        return True
    if rule.allow_loopback and address.is_loopback:
        return True
    return is_public(address)


def is_public(address: Address) -> bool:
    """A public unicast address: none of loopback, private, link-local, multicast, reserved..."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo:
            embedded = address.teredo[1]
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


_cache: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
_cache_lock = threading.Lock()
# The C resolver cannot be given a timeout and may wait many seconds on a blocked name: the
# lookup runs on a few threads of its own and the caller waits RESOLVE_WAIT_S at most.
_resolver = ThreadPoolExecutor(4, thread_name_prefix="resolve")


def resolve_host(host: str, port: int) -> tuple[str, ...]:
    """The host's addresses (empty when it does not resolve in time), cached for a while."""
    key = (host, port)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    try:
        infos = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(
            timeout=RESOLVE_WAIT_S
        )
    except (OSError, UnicodeError, FuturesTimeout):
        infos = []
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        ttl = RESOLVE_TTL_S if addresses else RESOLVE_TTL_S / 6  # a failure is asked again soon
        _cache[key] = (now + ttl, addresses)
    return addresses


def forget_resolved() -> None:
    """Drop cached DNS answers (tests that change what a name resolves to)."""
    with _cache_lock:
        _cache.clear()
