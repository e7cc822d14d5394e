"""Password hashing with scrypt (hashlib), salt and cost stored with each hash.

Format: ``scrypt$N$r$p$salt$hash`` (salt and hash in base64), so the cost can be raised
later and old hashes still verify; ``needs_rehash`` says when to store a new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP's password storage guidance lists N=2**15, r=8, p=3 (32 MiB per hash) among its
# equivalent scrypt minimums; the tests pass a smaller N to stay quick.
N, R, P = 2**15, 8, 3


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    return "$".join(("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; a malformed stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def needs_rehash(stored: str, *, n: int = N, r: int = R, p: int = P) -> bool:
    return not stored.startswith(f"scrypt${n}${r}${p}$")


def dummy_verify(password: str, *, n: int = N) -> None:
    """Spend a verification's time for a login that does not exist (no timing oracle)."""
    if n not in _DUMMIES:
        _DUMMIES[n] = hash_password(secrets.token_hex(8), n=n)
    verify_password(password, _DUMMIES[n])


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * n * 2 + 1024 * 1024, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DUMMIES: dict[int, str] = {}
