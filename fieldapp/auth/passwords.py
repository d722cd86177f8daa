"""Password hashing (argon2id), the password rules and one-time passwords."""

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

_hasher = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 200
# No 0/O, 1/I/L: a one-time password is read off a screen and typed on a phone.
_OTP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

# Checked when the username is unknown, so that path does the same work as a wrong password.
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def one_time_password() -> str:
    """A random password to hand over by word of mouth, e.g. `K7QM-4XPT-9HRC` (~59 bits)."""
    chars = "".join(secrets.choice(_OTP_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is not acceptable, or None when it is."""
    if len(password) < MIN_LENGTH:
        return _("The password must be at least %(n)d characters long.", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("The password must be at most %(n)d characters long.", n=MAX_LENGTH)
    if "\x00" in password:
        return _("The password must not contain control characters.")
    if username and username.lower() in password.lower():
        return _("The password must not contain the username.")
    if len(set(password)) < 4:
        return _("The password is too simple.")
    return None
