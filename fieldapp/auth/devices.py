"""The known-device cookie: which accounts have logged in successfully on this browser.

A device that carries it for an account skips that account's address-wide throttle bucket, so
an attacker guessing from many addresses cannot keep the officer's own phone out. It is signed
(it cannot be forged for another account) and names accounts only by their HMAC.
"""

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "fieldapp_device"
MAX_AGE_S = 180 * 24 * 3600
# A shared station phone remembers this many accounts, the latest first.
MAX_ACCOUNTS = 8
# Enough of the account's HMAC to tell accounts apart; keeps the cookie small.
KEY_CHARS = 32


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="fieldapp-known-device")


def known_accounts() -> list[str]:
    """Account keys this browser has logged in as (prefixes of throttle.account_key)."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4096:
        return []
    try:
        value = _serializer().loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return []
    if not isinstance(value, list):
        return []
    return [k for k in value if isinstance(k, str)][:MAX_ACCOUNTS]


def is_known(account_key: str) -> bool:
    """True when this browser has logged in as the account before."""
    return account_key[:KEY_CHARS] in known_accounts()


def remember(response, account_key: str) -> None:
    """Add the account to this browser's cookie, after a successful login."""
    short = account_key[:KEY_CHARS]
    accounts = [short, *(k for k in known_accounts() if k != short)][:MAX_ACCOUNTS]
    response.set_cookie(
        COOKIE,
        _serializer().dumps(accounts),
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
