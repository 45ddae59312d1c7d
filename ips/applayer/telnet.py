"""Telnet parser (sans-IO): option negotiation stripped, login attempts.

Theory of operation
-------------------
Each direction runs a byte-level IAC state machine (RFC 854): negotiation
(IAC WILL/WONT/DO/DONT x), subnegotiation (IAC SB ... IAC SE) and commands are
removed, IAC IAC becomes one 0xFF data byte. State survives segment
boundaries, so a sequence split across packets is still stripped.

On the resulting text a small login state machine watches for the server's
prompts ("login:", "Username:", "Password:") and takes the client's next line
as user name or password (handling backspace, character-at-a-time clients and
CR/LF/CR NUL line ends). After a password the server's next output decides the
result: another login prompt or a failure message is "failure"; a shell prompt
or banner is "success". Each attempt is one transaction, complete (and its
record set) once the result is known:
{"login": user, "password": pw, "result": "success"|"failure"|"unknown"}.
After a success, the lines typed form one more transaction
{"login": user, "commands": [...]}, complete at MAX_COMMANDS lines or at flow
end -- the input the Mirai/brute-force heuristics need.

Bounds: one line (MAX_LINE_BYTES), the server text tail (MAX_TAIL_BYTES),
MAX_COMMANDS lines after login, MAX_ATTEMPTS transactions per flow.
"""
from __future__ import annotations

import re

from ips.applayer import Tx

MAX_LINE_BYTES = 256
MAX_TAIL_BYTES = 512
MAX_COMMANDS = 32
MAX_ATTEMPTS = 1000
"""Login attempts tracked per connection; beyond that only an event."""

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
_DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)

_USER_PROMPT = re.compile(rb"(?:login|username|user name|user)\s*:\s*$", re.I)
_PASSWORD_PROMPT = re.compile(rb"(?:password|passcode|passwd)\s*:\s*$", re.I)
_FAILURE = re.compile(rb"incorrect|fail|denied|invalid|bad password|wrong|not allowed", re.I)
_SUCCESS = re.compile(rb"(?:[#$>%]\s*$)|last login|welcome|busybox|built-in shell", re.I)


class _Stripper:
    """Removes telnet commands from one direction's byte stream."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = _DATA

    def strip(self, data: bytes) -> bytes:
        if self.state == _DATA and IAC not in data:
            return data
        out = bytearray()
        state = self.state
        for byte in data:
            if state == _DATA:
                if byte == IAC:
                    state = _IAC
                else:
                    out.append(byte)
            elif state == _IAC:
                if byte == IAC:
                    out.append(IAC)
                    state = _DATA
                elif byte in (WILL, WONT, DO, DONT):
                    state = _OPTION
                elif byte == SB:
                    state = _SUB
                else:
                    state = _DATA
            elif state == _OPTION:
                state = _DATA
            elif state == _SUB:
                if byte == IAC:
                    state = _SUB_IAC
            elif state == _SUB_IAC:
                state = _DATA if byte == SE else _SUB
        self.state = state
        return bytes(out)


class TelnetParser:
    """One telnet connection."""

    __slots__ = ("events", "client_stripper", "server_stripper", "line", "tail",
                 "expecting", "attempt", "attempt_fields", "awaiting_result", "logged_in",
                 "session", "session_fields", "next_tx_id", "stopped", "previous_was_cr")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        self.client_stripper = _Stripper()
        self.server_stripper = _Stripper()
        self.line = bytearray()
        self.tail = bytearray()
        self.expecting: str | None = None        # "user" | "password"
        self.attempt: Tx | None = None
        self.attempt_fields: dict = {}           # record of the open attempt
        self.session: Tx | None = None           # commands after a successful login
        self.session_fields: dict = {}
        self.awaiting_result = False
        self.logged_in = False
        self.next_tx_id = 0
        self.stopped = False
        self.previous_was_cr = False

    @property
    def buffered_bytes(self) -> int:
        return len(self.line) + len(self.tail)

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if gap:
            # Lost bytes may hold a line end: drop the partial line, and
            # restart negotiation stripping in the data state.
            self.line.clear()
            (self.client_stripper if to_server else self.server_stripper).state = _DATA
        if self.stopped:
            return []
        if to_server:
            return self._client(self.client_stripper.strip(data))
        return self._server(self.server_stripper.strip(data))

    def finish(self) -> list[Tx]:
        out: list[Tx] = []
        if self.attempt is not None and not self.attempt.complete:
            self._close_attempt()
            out.append(self.attempt)
        if self.session is not None and not self.session.complete:
            self._close_session()
            out.append(self.session)
        return out

    def _close_attempt(self) -> None:
        self.attempt.record = dict(self.attempt_fields)
        self.attempt.complete = True

    def _close_session(self) -> None:
        self.session.record = dict(self.session_fields)
        self.session.complete = True

    # -- server output ----------------------------------------------------------------

    def _server(self, text: bytes) -> list[Tx]:
        if not text:
            return []
        self.tail += text
        if len(self.tail) > MAX_TAIL_BYTES:
            del self.tail[:len(self.tail) - MAX_TAIL_BYTES]
        out: list[Tx] = []
        tail = bytes(self.tail)
        if self.awaiting_result and self.attempt is not None:
            after = tail
            if _FAILURE.search(after) or _USER_PROMPT.search(after):
                self._result("failure", out)
            elif _SUCCESS.search(after):
                self._result("success", out)
                self.logged_in = True
        if _PASSWORD_PROMPT.search(tail):
            self.expecting = "password"
            self.tail.clear()
        elif _USER_PROMPT.search(tail):
            if self.attempt is not None and not self.attempt.complete:
                self._result("failure" if self.awaiting_result else "unknown", out)
            if self.session is not None and not self.session.complete:
                self._close_session()
                out.append(self.session)
            self.session = None
            self.expecting = "user"
            self.logged_in = False
            self.tail.clear()
        return out

    def _result(self, result: str, out: list[Tx]) -> None:
        attempt = self.attempt
        self.attempt_fields["result"] = result
        attempt.to_server = False
        self.awaiting_result = False
        self._close_attempt()
        if attempt not in out:
            out.append(attempt)
        self.tail.clear()

    # -- client input -----------------------------------------------------------------

    def _client(self, text: bytes) -> list[Tx]:
        out: list[Tx] = []
        for byte in text:
            if byte in (0x0D, 0x0A, 0x00):
                if byte == 0x0A and self.previous_was_cr:
                    self.previous_was_cr = False
                    continue
                if byte == 0x00 and self.previous_was_cr:
                    self.previous_was_cr = False
                    continue
                self.previous_was_cr = byte == 0x0D
                if byte == 0x00:
                    continue
                self._line_done(bytes(self.line), out)
                self.line.clear()
                continue
            self.previous_was_cr = False
            if byte in (0x08, 0x7F):
                if self.line:
                    self.line.pop()
                continue
            if len(self.line) < MAX_LINE_BYTES:
                self.line.append(byte)
        return out

    def _line_done(self, line: bytes, out: list[Tx]) -> None:
        text = line.decode("utf-8", "replace")
        if self.expecting == "user":
            if self.next_tx_id >= MAX_ATTEMPTS:
                self.events.append("telnet.too_many_login_attempts")
                self.stopped = True
                return
            if self.attempt is not None and not self.attempt.complete:
                self._close_attempt()
                out.append(self.attempt)
            self.attempt = Tx(app_proto="telnet", tx_id=self.next_tx_id, to_server=True,
                              buffers={"telnet.login": line})
            self.attempt_fields = {"login": text, "result": "unknown"}
            self.next_tx_id += 1
            self.expecting = None
            out.append(self.attempt)
        elif self.expecting == "password":
            if self.attempt is None or self.attempt.complete:
                # Password prompt without a user prompt (e.g. password-only
                # devices): an attempt with an empty user name.
                self.attempt = Tx(app_proto="telnet", tx_id=self.next_tx_id, to_server=True,
                                  buffers={})
                self.attempt_fields = {"login": "", "result": "unknown"}
                self.next_tx_id += 1
            self.attempt_fields["password"] = text
            self.attempt.buffers["telnet.password"] = line
            self.attempt.to_server = True
            self.expecting = None
            self.awaiting_result = True
            self.tail.clear()
            out.append(self.attempt)
        elif self.logged_in and line and (self.session is None or not self.session.complete):
            if self.session is None:
                self.session = Tx(app_proto="telnet", tx_id=self.next_tx_id, to_server=True,
                                  buffers={"telnet.command": []})
                self.next_tx_id += 1
                self.session_fields = {"login": self.attempt_fields.get("login", ""), "commands": []}
            self.session_fields["commands"].append(text)
            self.session.buffers["telnet.command"].append(line)
            if len(self.session_fields["commands"]) >= MAX_COMMANDS:
                self._close_session()
            out.append(self.session)
