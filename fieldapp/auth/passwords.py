"""Password hashing (argon2id) and the password rules."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

_hasher = PasswordHasher()
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is not acceptable, or None when it is."""
    if len(password) < MIN_LENGTH:
        return _("The password must be at least %(n)d characters long.", n=MIN_LENGTH)
    if username and username.lower() in password.lower():
        return _("The password must not contain the username.")
    if len(set(password)) < 4:
        return _("The password is too simple.")
    return None
