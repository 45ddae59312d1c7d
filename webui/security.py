"""Sessions, CSRF tokens and the login rate limit.

* A session cookie holds a random token; the store keeps only
  HMAC(secret_key, token), so a copy of the database is no key to the box.
* Each session has its own random CSRF token. Mutating API requests must
  carry it in the ``X-CSRF-Token`` header (pages send it with fetch); the
  cookie alone never authorises a change.
* The login form, which has no session yet, uses a double-submit token: a
  random value in an HttpOnly SameSite=strict cookie and in the form.
* Failed logins are counted per client address and per user name in the
  store (so a restart does not reset them); past the limit the login answers
  429 until the window has passed.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass

SESSION_COOKIE = "rg_session"
LOGIN_CSRF_COOKIE = "rg_login_csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    """Name of the logged-in user."""
    csrf: str
    """The token mutating requests of this session must echo."""
    token_hash: str
    """Key of the session row."""


def _hash_token(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def create_session(conn: sqlite3.Connection, secret: str, user: str) -> tuple[str, Session]:
    """Returns the cookie value and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    token_hash = _hash_token(secret, token)
    now = time.time()
    conn.execute("INSERT INTO web_sessions (token_hash, user, csrf, created, last_seen)"
                 " VALUES (?,?,?,?,?)", (token_hash, user, csrf, now, now))
    return token, Session(user, csrf, token_hash)


def load_session(conn: sqlite3.Connection, secret: str, token: str | None, *,
                 idle_seconds: float, max_seconds: float) -> Session | None:
    if not token or len(token) > 128:
        return None
    token_hash = _hash_token(secret, token)
    row = conn.execute(
        "SELECT s.user, s.csrf, s.created, s.last_seen FROM web_sessions s"
        " JOIN users u ON u.name = s.user WHERE s.token_hash=?", (token_hash,)).fetchone()
    if row is None:
        return None
    now = time.time()
    if now - row["last_seen"] > idle_seconds or now - row["created"] > max_seconds:
        conn.execute("DELETE FROM web_sessions WHERE token_hash=?", (token_hash,))
        return None
    # Touch at most once a minute: every page view must not be a write.
    if now - row["last_seen"] > 60:
        conn.execute("UPDATE web_sessions SET last_seen=? WHERE token_hash=?", (now, token_hash))
    return Session(row["user"], row["csrf"], token_hash)


def end_session(conn: sqlite3.Connection, session: Session) -> None:
    conn.execute("DELETE FROM web_sessions WHERE token_hash=?", (session.token_hash,))


def end_sessions_of(conn: sqlite3.Connection, user: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE user=?", (user,))


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def login_blocked_for(conn: sqlite3.Connection, client: str, user: str, *,
                      max_failures: int, window_seconds: float) -> float:
    """Seconds until another login attempt is accepted (0: now)."""
    now = time.time()
    since = now - window_seconds
    worst = 0.0
    for column, value in (("client", client), ("user", user)):
        rows = conn.execute(
            f"SELECT ts FROM web_login_attempts WHERE {column}=? AND ts>? AND ok=0"
            " ORDER BY ts DESC LIMIT ?", (value, since, max_failures)).fetchall()
        if len(rows) >= max_failures:
            worst = max(worst, rows[-1]["ts"] + window_seconds - now)
    return max(worst, 0.0)


def record_login(conn: sqlite3.Connection, client: str, user: str, ok: bool,
                 window_seconds: float) -> None:
    now = time.time()
    conn.execute("INSERT INTO web_login_attempts (ts, client, user, ok) VALUES (?,?,?,?)",
                 (now, client, user[:64], int(ok)))
    if ok:
        # A success clears this user's failures from this client.
        conn.execute("DELETE FROM web_login_attempts WHERE client=? AND user=? AND ok=0",
                     (client, user[:64]))
    # Keep the table bounded: nothing older than the window matters.
    conn.execute("DELETE FROM web_login_attempts WHERE ts < ?", (now - window_seconds * 2,))
