"""Telnet parser (sans-IO): option negotiation stripped, login attempts.

Theory of operation
-------------------
Each direction runs a byte-level IAC state machine (RFC 854): negotiation
(IAC WILL/WONT/DO/DONT x), subnegotiation (IAC SB ... IAC SE) and commands are
removed, IAC IAC becomes one 0xFF data byte. State survives segment
boundaries, so a sequence split across packets is still stripped.

On the resulting text a small login state machine watches for the server's
prompts ("login:", "Username:", "Password:") and takes the client's next line
as user name or password. What a device's login program reads is not the
bytes on the wire: its telnet daemon strips commands its own way and the
kernel's terminal edits the line. A differential run against busybox telnetd
(what most cameras run) found an attacker could type a default password so
that the login read it and this parser did not (busybox drops `IAC SB x` as
three bytes where RFC 854 waits for `IAC SE`; the terminal honours ^U, ^W,
^V, ^C and erases on DEL only). So the client's bytes are read four ways:
two telnet dialects (RFC 854, busybox telnetd) times two terminals (Linux's
canonical defaults; the same with ^H as erase too, as many device shells
set it). Each reading makes its own lines, and `telnet.login` and
`telnet.password` hold every distinct reading of the line typed at a prompt:
a rule matches if any reading does. Lines typed before a prompt wait for it,
as the terminal queues them. The record shows the RFC reading with ^H as
erase. After a password the server's next output decides the
result: another login prompt or a failure message is "failure"; a shell prompt
or banner is "success". Each attempt is one transaction, complete (and its
record set) once the result is known:
{"login": user, "password": pw, "result": "success"|"failure"|"unknown"}.
After a success, the lines typed form one more transaction
{"login": user, "commands": [...]}, complete at MAX_COMMANDS lines (the next
line starts another) or at flow end -- the input the Mirai/brute-force
heuristics need.

Bounds: one line per reading (MAX_LINE_BYTES, the kernel's 4095), lines
waiting for a prompt (MAX_QUEUED_LINES), the server text tail
(MAX_TAIL_BYTES), MAX_COMMANDS lines per command record, MAX_ATTEMPTS
transactions per flow.
"""
from __future__ import annotations

import re

from ips.applayer import Tx

MAX_LINE_BYTES = 4095
"""A canonical-mode line as Linux's terminal keeps it (N_TTY_BUF_SIZE - 1)."""
MAX_QUEUED_LINES = 8
"""Lines typed before the next prompt, per reading."""
MAX_ALL_READINGS_BYTES = 256 * 1024
"""Client bytes read all four ways; past them only the first reading goes
on (a login brute force is bytes, not megabytes, and a stream of editing
characters costs four passes per byte)."""
MAX_TAIL_BYTES = 512
MAX_COMMANDS = 32
MAX_ATTEMPTS = 1000
"""Login attempts tracked per connection; beyond that only an event."""

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
TELOPT_NAWS = 31
_DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)

_USER_PROMPT = re.compile(rb"(?:login|username|user name|user)\s*:\s*$", re.I)
_PASSWORD_PROMPT = re.compile(rb"(?:password|passcode|passwd)\s*:\s*$", re.I)
# A password prompt followed by the echo of a password typed ahead (echo
# still on when the line was typed), seen only while a line waits.
_PASSWORD_PROMPT_ECHOED = re.compile(
    rb"(?:password|passcode|passwd)\s*:[^\r\n]*\r*\n[\r\n]*$", re.I)
# The same for the login prompt: a user name typed ahead is echoed right
# after the prompt that reads it, in the same write when the server is slow.
_USER_PROMPT_ECHOED = re.compile(
    rb"(?:login|username|user name|user)\s*:[^\r\n]*\r*\n[\r\n]*$", re.I)
# A login prompt right before the password prompt, in one write: the login
# program read a user name typed ahead (echoed or not) and asked for the
# password at once.
_USER_THEN_PASSWORD = re.compile(
    rb"(?:login|username|user name|user)\s*:(?:[^\r\n]*\r*\n[\r\n]*)?\s*"
    rb"(?:password|passcode|passwd)\s*:\s*$", re.I)
_FAILURE = re.compile(rb"incorrect|fail|denied|invalid|bad password|wrong|not allowed", re.I)
_SUCCESS = re.compile(rb"(?:[#$>%]\s*$)|last login|welcome|busybox|built-in shell", re.I)
# A shell's prompt as the first thing a server shows: many cameras' telnet
# opens a root shell with no login at all.
_SHELL_PROMPT = re.compile(rb"[#$>]\s?$")


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


class _BusyboxStripper:
    """Removes telnet commands as busybox telnetd 1.35 does (its
    safe_write_to_pty_decode_iac, confirmed on the wire): IAC IAC is 0xFF,
    IAC 240..249 two bytes, IAC SB NAWS seven (the size raw, no IAC SE
    needed), and every other IAC sequence three bytes, IAC SB <option>
    included: a sub-negotiation's payload reaches the terminal as data.
    A feed that ends inside a sequence drops what it holds of it (busybox
    decodes each read on its own), so the next byte is data again."""

    __slots__ = ()

    def strip(self, data: bytes) -> bytes:
        if IAC not in data:
            return data
        out = bytearray()
        index, end = 0, len(data)
        while index < end:
            byte = data[index]
            if byte != IAC:
                out.append(byte)
                index += 1
                continue
            second = data[index + 1] if index + 1 < end else None
            if second is None:
                break
            if second == IAC:
                out.append(IAC)
                index += 2
            elif 240 <= second <= 249:
                index += 2
            elif second == SB and index + 2 < end and data[index + 2] == TELOPT_NAWS:
                index += 7
            else:
                index += 3
        return bytes(out)


# The bytes _Terminal acts on: line ends, NUL, ^C ^D ^H ^Q ^R ^S ^U ^V ^W ^Z ^\\ DEL.
_TERMINAL_SPECIAL = re.compile(rb"[\x00\x03\x04\x08\x0a\x0d\x11\x12\x13\x15\x16\x17\x1a\x1c\x7f]")


class _Terminal:
    """A line as Linux's terminal in canonical mode edits it, with the
    settings a telnet login gets (stty: icrnl ixon isig icanon iexten):
    DEL erases (and ^H too when `erase_backspace`), ^U kills the line, ^W
    erases a word, ^V takes the next byte as it is, ^C ^\\ ^Z flush it,
    ^Q ^S ^R are consumed, ^D hands what is typed to the reader without a
    line end. CR, LF, CR LF and CR NUL end a line."""

    __slots__ = ("line", "erase_backspace", "literal_next", "previous_was_cr", "pushed")

    def __init__(self, erase_backspace: bool) -> None:
        self.line = bytearray()
        self.erase_backspace = erase_backspace
        self.literal_next = False
        self.previous_was_cr = False
        self.pushed: list[bytes] = []     # what ^D handed over within this line

    def feed(self, text: bytes) -> list[tuple[bytes, list[bytes]]]:
        """The lines completed: (line, what ^D handed over before its end).
        A ^D also yields (b"", [what is typed]) at once: a login program
        that reads once gets that much, line end or not."""
        done = []
        line = self.line
        position, end = 0, len(text)
        while position < end:
            if self.literal_next:
                self.literal_next = False
                self.previous_was_cr = False
                if len(line) < MAX_LINE_BYTES:
                    line.append(text[position])
                position += 1
                continue
            # A run of ordinary bytes is appended at once: the per-byte
            # work is for the few bytes the terminal acts on.
            special = _TERMINAL_SPECIAL.search(text, position)
            stop = end if special is None else special.start()
            if stop > position:
                self.previous_was_cr = False
                room = MAX_LINE_BYTES - len(line)
                if room > 0:
                    line += text[position:min(stop, position + room)]
                position = stop
                continue
            byte = text[position]
            position += 1
            if byte in (0x0D, 0x0A, 0x00):
                if self.previous_was_cr and byte != 0x0D:
                    self.previous_was_cr = False      # CR LF, CR NUL: one line end
                    continue
                self.previous_was_cr = byte == 0x0D
                if byte == 0x00:
                    if len(line) < MAX_LINE_BYTES:
                        line.append(byte)
                    continue
                done.append((bytes(line), self.pushed))
                line.clear()
                self.pushed = []
                continue
            self.previous_was_cr = False
            if byte == 0x7F or byte == 0x08:
                if byte == 0x7F or self.erase_backspace:
                    if line:
                        line.pop()
                elif len(line) < MAX_LINE_BYTES:
                    line.append(byte)
            elif byte in (0x15, 0x03, 0x1C, 0x1A):          # ^U, and signals flush
                line.clear()
            elif byte == 0x17:                                 # ^W: ALTWERASE, as n_tty
                seen_word = False
                while line:
                    char = line[-1]
                    if chr(char).isalnum() or char == 0x5F:
                        seen_word = True
                    elif seen_word:
                        break
                    line.pop()
            elif byte == 0x16:                                 # ^V
                self.literal_next = True
            elif byte == 0x04:                                 # ^D
                if line and len(self.pushed) < 4:
                    self.pushed.append(bytes(line))
                    done.append((b"", [bytes(line)]))
            # ^Q ^S ^R: consumed
        return done


class _Reading:
    """One way the client's bytes may reach the login program: a telnet
    dialect, then a terminal. Its lines fill the prompts in order."""

    __slots__ = ("stripper", "terminal", "queued", "next_prompt")

    def __init__(self, stripper, erase_backspace: bool) -> None:
        self.stripper = stripper
        self.terminal = _Terminal(erase_backspace)
        self.queued: list[tuple[bytes, list[bytes]]] = []
        self.next_prompt = 0          # index of the next prompt this reading fills


class TelnetParser:
    """One telnet connection."""

    __slots__ = ("events", "readings", "server_stripper", "tail", "prompts",
                 "attempt", "attempt_fields", "awaiting_result", "logged_in",
                 "session", "session_fields", "next_tx_id", "stopped", "client_bytes")

    def __init__(self, config=None) -> None:
        self.events: list[str] = []
        # The first reading is the one the record shows (RFC 854, ^H erases).
        self.readings = (_Reading(_Stripper(), True), _Reading(_Stripper(), False),
                         _Reading(_BusyboxStripper(), True), _Reading(_BusyboxStripper(), False))
        self.server_stripper = _Stripper()
        self.tail = bytearray()
        # The prompts shown so far: ("user" | "password", the attempt it
        # belongs to); only the last few are kept (a reading more than that
        # behind gives its line to the newest).
        self.prompts: list[list] = []
        self.attempt: Tx | None = None
        self.attempt_fields: dict = {}           # record of the open attempt
        self.session: Tx | None = None           # commands after a successful login
        self.session_fields: dict = {}
        self.awaiting_result = False
        self.logged_in = False
        self.next_tx_id = 0
        self.stopped = False
        self.client_bytes = 0

    @property
    def buffered_bytes(self) -> int:
        held = sum(len(r.terminal.line) + sum(len(line) for line, _ in r.queued)
                   for r in self.readings)
        return held + len(self.tail)

    def feed(self, data: bytes, to_server: bool, gap: bool = False) -> list[Tx]:
        if gap:
            # Lost bytes may hold a line end: drop the partial lines, and
            # restart negotiation stripping in the data state.
            if to_server:
                for reading in self.readings:
                    reading.terminal.line.clear()
                    reading.stripper = type(reading.stripper)()
            else:
                self.server_stripper.state = _DATA
        if self.stopped:
            return []
        if to_server:
            return self._client(data)
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
                self._shell(out)
        elif (not self.logged_in and self.attempt is None and not self.prompts
              and _SHELL_PROMPT.search(tail)):
            self._shell(out)
            return out
        waiting = any(reading.queued for reading in self.readings)
        password = _PASSWORD_PROMPT.search(tail) is not None or (
            waiting and _PASSWORD_PROMPT_ECHOED.search(tail) is not None)
        if password and _USER_THEN_PASSWORD.search(tail):
            self._user_prompt(out)
        if password:
            self.tail.clear()
            self._prompt("password", out)
        elif _USER_PROMPT.search(tail) or (waiting and _USER_PROMPT_ECHOED.search(tail)):
            self._user_prompt(out)
        return out

    def _shell(self, out: list[Tx]) -> None:
        """A shell now reads the lines: the ones typed ahead (still queued
        for a prompt that will not come) are its first commands."""
        self.logged_in = True
        for number, reading in enumerate(self.readings):
            if not self.prompts[reading.next_prompt:]:
                queued, reading.queued = reading.queued, []
                if number == 0:
                    for line, _pushed in queued:
                        self._command(line, out)

    def _user_prompt(self, out: list[Tx]) -> None:
        if self.attempt is not None and not self.attempt.complete:
            self._result("failure" if self.awaiting_result else "unknown", out)
        if self.session is not None and not self.session.complete:
            self._close_session()
            out.append(self.session)
        self.session = None
        self.logged_in = False
        self.tail.clear()
        self._prompt("user", out)

    def _prompt(self, kind: str, out: list[Tx]) -> None:
        """A prompt: the next line of each reading is for it; a reading that
        already holds a line typed ahead gives it now, as the terminal
        would hand it to the login program."""
        self.prompts.append([kind, None])
        if len(self.prompts) > 2 * MAX_QUEUED_LINES:
            dropped = len(self.prompts) - 2 * MAX_QUEUED_LINES
            del self.prompts[:dropped]
            for reading in self.readings:
                reading.next_prompt = max(reading.next_prompt - dropped, 0)
        index = len(self.prompts) - 1
        for number, reading in enumerate(self.readings):
            if reading.next_prompt == index and reading.queued:
                line, pushed = reading.queued.pop(0)
                reading.next_prompt += 1
                self._answer(index, line, pushed, number == 0, out)

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

    def _client(self, data: bytes) -> list[Tx]:
        out: list[Tx] = []
        self.client_bytes += len(data)
        readings = self.readings
        if self.client_bytes > MAX_ALL_READINGS_BYTES:
            readings = readings[:1]
            if "telnet.readings_limited" not in self.events:
                self.events.append("telnet.readings_limited")
        for number, reading in enumerate(readings):
            for line, pushed in reading.terminal.feed(reading.stripper.strip(data)):
                if not line and pushed:
                    # ^D mid-line: what is typed so far is a candidate for the
                    # prompt the line is for; the line goes on.
                    if reading.next_prompt < len(self.prompts) and not self.logged_in:
                        self._answer(reading.next_prompt, b"", pushed, number == 0, out,
                                     partial=True)
                    continue
                if self.logged_in and not self.prompts[reading.next_prompt:]:
                    if number == 0:
                        self._command(line, out)
                    continue
                if reading.next_prompt < len(self.prompts):
                    reading.next_prompt += 1
                    self._answer(reading.next_prompt - 1, line, pushed, number == 0, out)
                elif len(reading.queued) < MAX_QUEUED_LINES:
                    reading.queued.append((line, pushed))
                elif number == 0:
                    # No room left to wait for a prompt: a line typed this
                    # far ahead is for a shell if for anything, and is
                    # inspected as a command now rather than dropped.
                    self._command(line, out)
        return out

    def _answer(self, index: int, line: bytes, pushed: list[bytes], primary: bool,
                out: list[Tx], partial: bool = False) -> None:
        """A reading's line for prompt `index`: a user name opens the
        attempt, a password completes it; other readings add what they read
        to the same buffers (each reading once: a list of distinct values)."""
        prompt = self.prompts[index]
        kind, attempt = prompt
        if attempt is None:
            if kind == "user" or self.attempt is None or self.attempt.complete:
                if self.next_tx_id >= MAX_ATTEMPTS:
                    if "telnet.too_many_login_attempts" not in self.events:
                        self.events.append("telnet.too_many_login_attempts")
                    self.stopped = True
                    return
                if self.attempt is not None and not self.attempt.complete:
                    self._close_attempt()
                    out.append(self.attempt)
                # A password prompt without a user prompt (password-only
                # devices): an attempt with an empty user name.
                self.attempt = Tx(app_proto="telnet", tx_id=self.next_tx_id, to_server=True,
                                  buffers={"telnet.login": []} if kind == "user" else {})
                self.attempt_fields = {"login": "", "result": "unknown"}
                self.next_tx_id += 1
            attempt = prompt[1] = self.attempt
        if attempt.complete:
            return
        name = "telnet.login" if kind == "user" else "telnet.password"
        values = attempt.buffers.setdefault(name, [])
        # The terminal keeps a NUL; a login program reads a C string, which
        # ends there, and the telnet client meant none (CR NUL is a line end).
        whole = line.replace(b"\0", b"")
        for value in ((*pushed,) if partial else (whole, line.split(b"\0", 1)[0], *pushed)):
            if value not in values and len(values) < 16:
                values.append(value)
        if partial:
            if attempt not in out:
                out.append(attempt)
            return
        if primary:
            self.attempt_fields["login" if kind == "user" else "password"] = whole.decode(
                "utf-8", "replace")
        if kind == "password":
            attempt.to_server = True
            self.awaiting_result = True
            self.tail.clear()
        if attempt not in out:
            out.append(attempt)

    def _command(self, line: bytes, out: list[Tx]) -> None:
        line = line.replace(b"\0", b"")        # telnet's CR NUL: no part of the command
        if not line:
            return
        if self.session is None or self.session.complete:
            # Past MAX_COMMANDS lines a new record starts: every line is
            # inspected, or 32 harmless commands would hide the 33rd.
            self.session = Tx(app_proto="telnet", tx_id=self.next_tx_id, to_server=True,
                              buffers={"telnet.command": []})
            self.next_tx_id += 1
            self.session_fields = {"login": self.attempt_fields.get("login", ""), "commands": []}
        self.session_fields["commands"].append(line.decode("utf-8", "replace"))
        self.session.buffers["telnet.command"].append(line)
        if len(self.session_fields["commands"]) >= MAX_COMMANDS:
            self._close_session()
        if self.session not in out:
            out.append(self.session)
