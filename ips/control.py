"""Control-plane actions: user intent written to the store, each with an audit row.

Theory of operation
-------------------
The web UI (and any CLI) changes the box only through these functions. They
never touch the kernel or the workers: they write rows that the services
reconcile.

* ``blocks`` rows with ``active=1`` are the wanted enforcement state. The
  inline service reconciles them into kernel ipsets every second:
  ``kind='quarantine'`` drops all traffic of ``mac`` / ``device_ip``;
  ``kind='block_destination'`` drops traffic between ``mac`` and
  ``destination`` (an IP address or network). Rows whose ``expires`` lies in
  the past are to be treated as inactive. Lifting a block sets ``active=0``;
  rows are never deleted, so the history stays visible.
* ``devices.quarantined`` is mirrored for convenience; ``blocks`` is the truth.
* ``mutes`` rows suppress alerts for (sid, mac) or (anomaly kind, mac) until
  ``expires``; the collector consults them, the UI hides muted alerts.
* Settings keys written here (JSON values, engine and services read them):
  ``engine.failure_policy`` ("fail-open" | "fail-closed"),
  ``profiling.learning_days`` (float days), ``devices.auto_quarantine`` (bool),
  ``devices.auto_quarantine_risk`` (0..1), ``rules.disabled_sids`` (sorted
  list of int), ``rules.disabled_categories`` (sorted list of classtype
  names), ``devices.allowed_destinations`` ({mac: [destination, ...]}).
* Every function writes its change and its audit row in one transaction, so
  an audited change either happened completely or not at all.

A `Store` connection must not be used by two threads at once while these run
(the web UI opens one per request).
"""
from __future__ import annotations

import ipaddress
import json
import re
import sqlite3
import time
from contextlib import contextmanager
from typing import Any, Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ips.store import Store

FAILURE_POLICIES = ("fail-open", "fail-closed")
MIN_PASSWORD_LENGTH = 10
MAX_REASON_LENGTH = 500
MAX_NAME_LENGTH = 64
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAC_PATTERN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

_hasher = PasswordHasher()


class ControlError(ValueError):
    """The request cannot be carried out as asked (bad value, conflict)."""


class NotFound(ControlError):
    """The device, alert, mute or user named does not exist."""


@contextmanager
def _transaction(store: Store) -> Iterator[sqlite3.Connection]:
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _audit(conn: sqlite3.Connection, actor: str, action: str, target: str | None,
           reason: str | None, detail: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO audit (ts, actor, action, target, reason, detail) VALUES (?,?,?,?,?,?)",
        (time.time(), actor, action, target, _clean_reason(reason),
         json.dumps(detail) if detail is not None else None))


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()
    return reason[:MAX_REASON_LENGTH] or None


def normalize_mac(mac: str) -> str:
    value = mac.strip().lower().replace("-", ":")
    if not MAC_PATTERN.match(value):
        raise ControlError(f"not a MAC address: {mac!r}")
    return value


def normalize_destination(destination: str) -> str:
    """An IP address or network, as the kernel ipset will hold it."""
    text = destination.strip()
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ControlError(f"not an IP address or network: {destination!r}") from None


def _device(conn: sqlite3.Connection, mac: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM devices WHERE mac=?", (mac,)).fetchone()
    if row is None:
        raise NotFound(f"no device {mac}")
    return row


def _expiry(expires: float | None, now: float) -> float | None:
    if expires is not None and expires <= now:
        raise ControlError("expiry lies in the past")
    return expires


def _get_setting(conn: sqlite3.Connection, key: str, default: Any) -> Any:
    row = conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def _put_setting(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                 " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                 (key, json.dumps(value)))


# --- devices: enforcement ------------------------------------------------

def quarantine(store: Store, mac: str, *, actor: str, reason: str | None = None,
               expires: float | None = None) -> int:
    """Cut a device off the network; returns the active `blocks` row id.
    Quarantining an already quarantined device returns the existing row."""
    mac = normalize_mac(mac)
    now = time.time()
    expires = _expiry(expires, now)
    with _transaction(store) as conn:
        device = _device(conn, mac)
        existing = conn.execute(
            "SELECT id FROM blocks WHERE kind='quarantine' AND mac=? AND active=1"
            " AND (expires IS NULL OR expires > ?)", (mac, now)).fetchone()
        if existing:
            return int(existing[0])
        cursor = conn.execute(
            "INSERT INTO blocks (kind, mac, device_ip, destination, created, expires,"
            " reason, created_by, active) VALUES ('quarantine',?,?,NULL,?,?,?,?,1)",
            (mac, device["ip"], now, expires, _clean_reason(reason), actor))
        conn.execute("UPDATE devices SET quarantined=1 WHERE mac=?", (mac,))
        _audit(conn, actor, "quarantine", mac, reason,
               {"block_id": cursor.lastrowid, "device_ip": device["ip"], "expires": expires})
        return int(cursor.lastrowid)


def unquarantine(store: Store, mac: str, *, actor: str, reason: str | None = None) -> int:
    """Lift every active quarantine of a device; returns how many rows changed."""
    mac = normalize_mac(mac)
    with _transaction(store) as conn:
        _device(conn, mac)
        changed = conn.execute(
            "UPDATE blocks SET active=0 WHERE kind='quarantine' AND mac=? AND active=1",
            (mac,)).rowcount
        conn.execute("UPDATE devices SET quarantined=0 WHERE mac=?", (mac,))
        _audit(conn, actor, "unquarantine", mac, reason, {"rows": changed})
        return changed


def block_destination(store: Store, mac: str, destination: str, *, actor: str,
                      reason: str | None = None, expires: float | None = None) -> int:
    """Stop one device from talking to one address or network."""
    mac = normalize_mac(mac)
    destination = normalize_destination(destination)
    now = time.time()
    expires = _expiry(expires, now)
    with _transaction(store) as conn:
        device = _device(conn, mac)
        existing = conn.execute(
            "SELECT id FROM blocks WHERE kind='block_destination' AND mac=? AND destination=?"
            " AND active=1 AND (expires IS NULL OR expires > ?)",
            (mac, destination, now)).fetchone()
        if existing:
            return int(existing[0])
        cursor = conn.execute(
            "INSERT INTO blocks (kind, mac, device_ip, destination, created, expires,"
            " reason, created_by, active) VALUES ('block_destination',?,?,?,?,?,?,?,1)",
            (mac, device["ip"], destination, now, expires, _clean_reason(reason), actor))
        _audit(conn, actor, "block_destination", mac, reason,
               {"block_id": cursor.lastrowid, "destination": destination, "expires": expires})
        return int(cursor.lastrowid)


def unblock_destination(store: Store, mac: str, destination: str, *, actor: str,
                        reason: str | None = None) -> int:
    mac = normalize_mac(mac)
    destination = normalize_destination(destination)
    with _transaction(store) as conn:
        _device(conn, mac)
        changed = conn.execute(
            "UPDATE blocks SET active=0 WHERE kind='block_destination' AND mac=?"
            " AND destination=? AND active=1", (mac, destination)).rowcount
        _audit(conn, actor, "unblock_destination", mac, reason,
               {"destination": destination, "rows": changed})
        return changed


def allow_destination(store: Store, mac: str, destination: str, *, actor: str,
                      reason: str | None = None) -> None:
    """Declare a destination normal for a device: lifts any block of it and
    adds it to ``devices.allowed_destinations``, which the profiler treats as
    part of the baseline (no more new_destination anomalies for it)."""
    mac = normalize_mac(mac)
    destination = normalize_destination(destination)
    with _transaction(store) as conn:
        _device(conn, mac)
        conn.execute("UPDATE blocks SET active=0 WHERE kind='block_destination' AND mac=?"
                     " AND destination=? AND active=1", (mac, destination))
        allowed = _get_setting(conn, "devices.allowed_destinations", {})
        entries = set(allowed.get(mac, []))
        entries.add(destination)
        allowed[mac] = sorted(entries)
        _put_setting(conn, "devices.allowed_destinations", allowed)
        _audit(conn, actor, "allow_destination", mac, reason, {"destination": destination})


# --- devices: identity and lifecycle --------------------------------------

def rename_device(store: Store, mac: str, *, actor: str, name: str | None = None,
                  device_type: str | None = None) -> None:
    """Set the user's name and/or type for a device. An empty string clears
    the override (the inventory's guess shows again); None leaves it."""
    mac = normalize_mac(mac)
    changes: dict[str, str | None] = {}
    for column, value in (("user_name", name), ("user_type", device_type)):
        if value is None:
            continue
        value = value.strip()
        if len(value) > MAX_NAME_LENGTH:
            raise ControlError(f"{column} longer than {MAX_NAME_LENGTH} characters")
        changes[column] = value or None
    if not changes:
        raise ControlError("nothing to change")
    with _transaction(store) as conn:
        before = _device(conn, mac)
        assignments = ", ".join(f"{column}=?" for column in changes)
        conn.execute(f"UPDATE devices SET {assignments} WHERE mac=?", (*changes.values(), mac))
        _audit(conn, actor, "rename_device", mac, None,
               {column: {"from": before[column], "to": value} for column, value in changes.items()})


def relearn(store: Store, mac: str, *, actor: str, days: float | None = None,
            reason: str | None = None) -> float:
    """Open a re-learning window (e.g. before an expected firmware update);
    returns the time it ends. Defaults to the configured learning period."""
    mac = normalize_mac(mac)
    with _transaction(store) as conn:
        _device(conn, mac)
        if days is None:
            days = float(_get_setting(conn, "profiling.learning_days", 7.0))
        if not 0 < days <= 90:
            raise ControlError("re-learning period must be between 0 and 90 days")
        until = time.time() + days * 86400
        conn.execute("UPDATE devices SET stage='relearning', stage_until=? WHERE mac=?",
                     (until, mac))
        _audit(conn, actor, "relearn", mac, reason, {"days": days, "until": until})
        return until


# --- alerts ----------------------------------------------------------------

def acknowledge_alert(store: Store, alert_id: int, *, actor: str) -> None:
    with _transaction(store) as conn:
        if conn.execute("UPDATE alerts SET acknowledged=1 WHERE id=?", (alert_id,)).rowcount == 0:
            raise NotFound(f"no alert {alert_id}")
        _audit(conn, actor, "acknowledge_alert", str(alert_id), None)


def acknowledge_anomaly(store: Store, anomaly_id: int, *, actor: str) -> None:
    with _transaction(store) as conn:
        if conn.execute("UPDATE device_anomalies SET acknowledged=1 WHERE id=?",
                        (anomaly_id,)).rowcount == 0:
            raise NotFound(f"no device anomaly {anomaly_id}")
        _audit(conn, actor, "acknowledge_anomaly", str(anomaly_id), None)


def mute(store: Store, *, actor: str, expires: float, sid: int | None = None,
         kind: str | None = None, mac: str | None = None, reason: str | None = None) -> int:
    """Silence a rule (sid) or an anomaly kind, for one device (mac) or all,
    until `expires`. A mute always expires: forgetting one must not blind the
    box for good."""
    if (sid is None) == (kind is None):
        raise ControlError("mute needs exactly one of sid or kind")
    mac = normalize_mac(mac) if mac else None
    now = time.time()
    _expiry(expires, now)
    if expires - now > 366 * 86400:
        raise ControlError("a mute lasts at most a year")
    with _transaction(store) as conn:
        if mac:
            _device(conn, mac)
        cursor = conn.execute(
            "INSERT INTO mutes (sid, mac, kind, created, expires, created_by) VALUES (?,?,?,?,?,?)",
            (sid, mac, kind, now, expires, actor))
        _audit(conn, actor, "mute", mac or "*", reason,
               {"mute_id": cursor.lastrowid, "sid": sid, "kind": kind, "expires": expires})
        return int(cursor.lastrowid)


def unmute(store: Store, mute_id: int, *, actor: str) -> None:
    """End a mute now (the row stays, with its expiry moved to now)."""
    now = time.time()
    with _transaction(store) as conn:
        if conn.execute("UPDATE mutes SET expires=? WHERE id=? AND expires > ?",
                        (now, mute_id, now)).rowcount == 0:
            raise NotFound(f"no active mute {mute_id}")
        _audit(conn, actor, "unmute", str(mute_id), None)


# --- rules -----------------------------------------------------------------

def set_sids_enabled(store: Store, sids: list[int], enabled: bool, *, actor: str,
                     reason: str | None = None) -> list[int]:
    """Enable or disable rules by sid; returns the new disabled list. The
    engine reads ``rules.disabled_sids`` at its next reload."""
    if not sids:
        raise ControlError("no sids given")
    if any(not isinstance(sid, int) or sid <= 0 for sid in sids):
        raise ControlError("sids are positive integers")
    with _transaction(store) as conn:
        disabled = set(_get_setting(conn, "rules.disabled_sids", []))
        disabled = disabled - set(sids) if enabled else disabled | set(sids)
        value = sorted(disabled)
        _put_setting(conn, "rules.disabled_sids", value)
        _audit(conn, actor, "enable_rules" if enabled else "disable_rules",
               ",".join(map(str, sorted(sids)[:50])), reason, {"count": len(sids)})
        return value


def set_category_enabled(store: Store, category: str, enabled: bool, *, actor: str,
                         reason: str | None = None) -> list[str]:
    category = category.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", category):
        raise ControlError(f"not a rule category: {category!r}")
    with _transaction(store) as conn:
        disabled = set(_get_setting(conn, "rules.disabled_categories", []))
        disabled = disabled - {category} if enabled else disabled | {category}
        value = sorted(disabled)
        _put_setting(conn, "rules.disabled_categories", value)
        _audit(conn, actor, "enable_category" if enabled else "disable_category",
               category, reason)
        return value


# --- settings --------------------------------------------------------------

def update_settings(store: Store, *, actor: str, failure_policy: str | None = None,
                    learning_days: float | None = None, auto_quarantine: bool | None = None,
                    auto_quarantine_risk: float | None = None) -> dict[str, Any]:
    """Change the box-wide settings given (None leaves one as it is)."""
    changes: dict[str, Any] = {}
    if failure_policy is not None:
        if failure_policy not in FAILURE_POLICIES:
            raise ControlError(f"failure policy must be one of {FAILURE_POLICIES}")
        changes["engine.failure_policy"] = failure_policy
    if learning_days is not None:
        if not 0.5 <= learning_days <= 90:
            raise ControlError("learning period must be between 0.5 and 90 days")
        changes["profiling.learning_days"] = float(learning_days)
    if auto_quarantine is not None:
        changes["devices.auto_quarantine"] = bool(auto_quarantine)
    if auto_quarantine_risk is not None:
        if not 0 < auto_quarantine_risk <= 1:
            raise ControlError("automatic quarantine risk threshold must be in (0, 1]")
        changes["devices.auto_quarantine_risk"] = float(auto_quarantine_risk)
    if not changes:
        raise ControlError("nothing to change")
    changed: dict[str, Any] = {}
    with _transaction(store) as conn:
        for key, value in changes.items():
            before = _get_setting(conn, key, None)
            if before == value:
                continue  # a form re-saving unchanged values is not a change to audit
            _put_setting(conn, key, value)
            _audit(conn, actor, "setting", key, None, {"from": before, "to": value})
            changed[key] = value
    return changed


# --- users -----------------------------------------------------------------

def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ControlError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise ControlError("password too long")


def add_user(store: Store, name: str, password: str, *, actor: str) -> None:
    if not USER_NAME_PATTERN.match(name):
        raise ControlError("user names are 1-32 letters, digits, '.', '_' or '-'")
    _check_password(password)
    password_hash = _hasher.hash(password)
    with _transaction(store) as conn:
        try:
            conn.execute("INSERT INTO users (name, password_hash, created) VALUES (?,?,?)",
                         (name, password_hash, time.time()))
        except sqlite3.IntegrityError:
            raise ControlError(f"user {name!r} exists") from None
        _audit(conn, actor, "add_user", name, None)


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    _check_password(password)
    password_hash = _hasher.hash(password)
    with _transaction(store) as conn:
        if conn.execute("UPDATE users SET password_hash=? WHERE name=?",
                        (password_hash, name)).rowcount == 0:
            raise NotFound(f"no user {name!r}")
        _audit(conn, actor, "set_password", name, None)


def delete_user(store: Store, name: str, *, actor: str) -> None:
    with _transaction(store) as conn:
        if conn.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is None:
            raise NotFound(f"no user {name!r}")
        if conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] <= 1:
            raise ControlError("cannot delete the last user")
        conn.execute("DELETE FROM users WHERE name=?", (name,))
        _audit(conn, actor, "delete_user", name, None)


# A valid hash of a random password: verifying against it when the user does
# not exist costs the same time, so timing does not reveal user names.
_DUMMY_HASH = _hasher.hash("reefguard-no-such-user")


def verify_password(store: Store, name: str, password: str) -> bool:
    """True when `password` is the user's; upgrades the hash if argon2's
    parameters changed since it was made."""
    row = store.conn.execute("SELECT password_hash FROM users WHERE name=?",
                             (name,)).fetchone()
    try:
        _hasher.verify(row[0] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    if row is None:
        return False
    if _hasher.check_needs_rehash(row[0]):
        store.conn.execute("UPDATE users SET password_hash=? WHERE name=?",
                           (_hasher.hash(password), name))
    return True
