"""The typings of the telnet differential test: ways to type a factory-default
password at a telnet login.

A virtual patch for a Mirai default password matches `telnet.password`, so
`TelnetParser` must show every password the device's login program reads.
The login does not read the bytes on the wire: the device's telnet daemon
strips telnet commands its own way, the kernel's terminal edits the line,
and the login takes a line for whichever prompt is showing when it reads.
Each typing is one telnet session that ends with the login reading (or
not) a target password, typed so that one of these three layers may make of
it something other than what a straightforward reader makes. The families:

* telnet layer (`TELNET`): IAC commands inside the password (2-byte
  commands, negotiations, `IAC SB` sub-negotiations complete, bare or
  without `IAC SE`, `IAC <byte below 240>`), IAC sequences cut across two
  writes, CR and LF in separate writes, and odd negotiations when the
  session opens. busybox telnetd drops `IAC SB x` as three bytes where RFC
  854 waits for `IAC SE`, eats `IAC SB NAWS` plus four raw bytes, and decodes
  each read on its own.
* terminal line editing (`TERMINAL`): what Linux's canonical mode does to a
  line: erase (DEL, and ^H which is *not* erase there), kill ^U, word erase
  ^W, literal next ^V, ^S/^Q flow control, ^C ^\\ ^Z flushing the line, ^D
  handing over a line without its end, NUL, every line end, and lines
  longer than a parser's buffer with the password after a kill.
* prompt timing (`TIMING`): when the password is typed: ahead of its prompt
  (in the user name's write, before the login prompt, right after the user
  name), a second attempt on one connection, a user name whose echo reads
  like a password prompt. A terminal queues lines typed ahead; a login that
  does not flush its input reads them at the next prompt.

Most patterns are applied to each of `TARGETS`; the negotiation and timing
variants use the first target only. Names are stable (the first
investigation's report, /tmp/telnetdiff/REPORT.md, refers to them); a
typing's `label` adds the target: `ins:lnext/xc3511`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

TARGETS = (b"xc3511", b"vizxv", b"7ujMko0admin", b"hi3518")
"""Mirai default passwords, as `signatures/virtual-patches.rules` matches them."""
USER = b"root"

TELNET, TERMINAL, TIMING = "telnet layer", "line editing", "prompt timing"
BASELINE = "plain/xc3511"
"""The password typed plainly: it must be read by the login and seen by the
parser in every flavour, or the run proves nothing (always selected)."""

IAC, SB, SE, WILL, WONT, DO, DONT = b"\xff", b"\xfa", b"\xf0", b"\xfb", b"\xfc", b"\xfd", b"\xfe"
NOP = b"\xf1"
BINARY, ECHO, SGA, TTYPE, NAWS, LINEMODE = b"\x00", b"\x01", b"\x03", b"\x18", b"\x1f", b"\x22"
CRLF = b"\r\n"
LONG = 300
"""Junk longer than the 256 bytes the parser used to keep of a line."""
RESULT_WAIT = 2.0
"""How long to wait for the login's verdict after the password."""


# -- session steps -------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """One write."""
    data: bytes


@dataclass(frozen=True)
class Segments:
    """Writes far enough apart (the client's SEGMENT_GAP) that each reaches
    telnetd as a read of its own: busybox decodes each read on its own."""
    parts: tuple[bytes, ...]


@dataclass(frozen=True)
class Chars:
    """One write per byte, as a character-at-a-time client types."""
    data: bytes


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class WaitFor:
    """Wait for the server to show "login", "password" or "result"
    (Login incorrect); a missing one is noted, and the session goes on."""
    what: str
    timeout: float = 3.0


Step = Send | Segments | Chars | Pause | WaitFor


@dataclass(frozen=True)
class Typing:
    name: str
    """The pattern, stable across runs (`ins:lnext`)."""
    family: str
    target: bytes
    steps: tuple[Step, ...]
    """The whole session, from connecting to the login's verdict."""

    @property
    def label(self) -> str:
        return f"{self.name}/{self.target.decode()}"


# -- the password phase --------------------------------------------------------------

def _half(target: bytes) -> int:
    return len(target) // 2


TELNET_INSERTS = {
    "iac_iac": IAC + IAC,
    "iac_nop": IAC + NOP, "iac_ayt": IAC + b"\xf6", "iac_ga": IAC + b"\xf9", "iac_dm": IAC + b"\xf2",
    "iac_brk": IAC + b"\xf3", "iac_ip": IAC + b"\xf4", "iac_ao": IAC + b"\xf5", "iac_ec": IAC + b"\xf7",
    "iac_el": IAC + b"\xf8", "iac_se": IAC + SE,
    "iac_will_echo": IAC + WILL + ECHO, "iac_do_binary": IAC + DO + BINARY, "iac_wont_ff": IAC + WONT + IAC,
    "iac_dont_naws": IAC + DONT + NAWS,
    "sb_ttype_full": IAC + SB + TTYPE + b"\x00xterm" + IAC + SE,
    "sb_naws_full": IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE,
    "sb_naws_ff_ff": IAC + SB + NAWS + b"\xff\xff\x00\x18" + IAC + SE,
    "sb_empty": IAC + SB + IAC + SE,
    "sb_naws_se_inside_junk": IAC + SB + NAWS + IAC + SE + b"QZ",   # busybox: NAWS is 4 raw bytes
    "iac_eor_junk": IAC + b"\xef" + b"Q",                             # busybox: IAC <240 is 3 bytes
    "iac_01_junk": IAC + b"\x01" + b"Q",
    "iac_41_junk": IAC + b"A" + b"Q",
}
"""Telnet commands put in the middle of the password, in the same write."""

EDIT_INSERTS = {
    "nul": b"\x00",
    "tab": b"\t",
    "bs_edit": b"Q\x08",            # ^H: an ordinary character where erase is DEL only
    "del_edit": b"Q\x7f",
    "bs_then_del": b"\x08\x7f",     # the kernel erases the ^H; an ^H-erasing reader two characters
    "lnext": b"\x16",
    "lnext_del": b"\x16\x7f",       # a literal DEL stays in the line
    "xoff_xon": b"\x13\x11",        # IXON: never stored
    "xon": b"\x11",
    "reprint": b"\x12",
    "werase": b" Q\x17\x7f",        # word erase, then DEL erases the space
    "werase_alone": b"Q\x17",
    "kill_mid": b"\x15",
    "eof_mid": b"\x04",
    "intr_mid": b"\x03",
    "susp_mid": b"\x1a",
    "quit_mid": b"\x1c",
    "utf8_del": b"Z\x80\x80\x7f",   # IUTF8 would erase the whole character
    "esc_seq": b"\x1b[D",
    "cr_nul_mid": b"\r\x00",
}
"""Line-editing bytes put in the middle of the password."""


def _password_typings(target: bytes) -> Iterator[tuple[str, str, tuple[Step, ...]]]:
    """(name, family, steps typing the password once "Password:" shows)."""
    head, tail = target[:_half(target)], target[_half(target):]
    yield "plain", TERMINAL, (Send(target + CRLF),)
    for family, inserts in ((TELNET, TELNET_INSERTS), (TERMINAL, EDIT_INSERTS)):
        for name, insert in inserts.items():
            yield f"ins:{name}", family, (Send(head + insert + tail + CRLF),)
    yield from _line_ends(target)
    yield from _prefixes(target)
    yield "wrap:sb_ttype", TELNET, (Send(head + IAC + SB + TTYPE + tail + IAC + SE + CRLF),)
    yield "wrap:sb_naws_like", TELNET, (Send(head + IAC + SB + b"\x99" + tail + IAC + SE + CRLF),)
    yield from _segmentations(target)


def _line_ends(target: bytes) -> Iterator[tuple[str, str, tuple[Step, ...]]]:
    for name, end in {"crnul": b"\r\x00", "lf": b"\n", "cr": b"\r", "lfcr": b"\n\r"}.items():
        yield f"eol:{name}", TERMINAL, (Send(target + end),)
    # busybox maps CR LF to CR only when both are in one read without an IAC between
    yield "eol:cr|lf_split", TELNET, (Segments((target + b"\r", b"\n")),)
    yield "eol:cr_iacnop_lf", TELNET, (Send(target + b"\r" + IAC + NOP + b"\n"),)
    yield "eol:eof_only", TERMINAL, (Send(target + b"\x04"),)
    yield "eol:eof_then_cr_later", TERMINAL, (Send(target + b"\x04"), Pause(0.6), Send(CRLF))
    yield "eol:lnext_cr", TERMINAL, (Send(target + b"\x16\rJUNK" + CRLF),)
    yield "eol:lnext_lf", TERMINAL, (Send(target + b"\x16\nJUNK" + CRLF),)


def _prefixes(target: bytes) -> Iterator[tuple[str, str, tuple[Step, ...]]]:
    """Junk before the password that the terminal (or telnetd) removes."""
    long = b"A" * LONG
    edits = {
        "kill": b"JUNK\x15", "kill_long300": long + b"\x15", "kill_long250": b"A" * 250 + b"\x15",
        "intr": b"JUNK\x03", "susp": b"JUNK\x1a", "susp_long300": long + b"\x1a",
        "werase_long": long + b"\x17", "del_long": long + b"\x7f" * LONG, "long_junk": long,
        "kill_then_dels": b"QQ\x15\x7f\x7f\x7f",
    }
    for name, prefix in edits.items():
        yield f"pre:{name}", TERMINAL, (Send(prefix + target + CRLF),)
    telnet = {
        "iac_01_lf": IAC + b"\x01\n",                       # busybox eats the LF
        "naws_se_crlf": IAC + SB + NAWS + IAC + SE + CRLF,  # busybox eats the CR LF as window size
        "sb_ttype_bare": IAC + SB + TTYPE,
        "naws_no_se": IAC + SB + NAWS + b"\x00\x50\x00\x18",
    }
    for name, prefix in telnet.items():
        yield f"pre:{name}", TELNET, (Send(prefix + target + CRLF),)
    yield "pre:high_bit_strip", TERMINAL, (Send(bytes(byte | 0x80 for byte in target) + CRLF),)


def _segmentations(target: bytes) -> Iterator[tuple[str, str, tuple[Step, ...]]]:
    """The password in several writes, cut inside an IAC sequence."""
    head, tail = target[:_half(target)], target[_half(target):]
    yield "seg:per_char", TELNET, (Chars(target + CRLF),)
    cuts = {
        "iac_will|opt": (IAC + WILL, b""), "iac|will_opt": (IAC, WILL), "iac_sb|rest": (IAC + SB, b""),
        "iac_sb_naws|rest": (IAC + SB + NAWS, b""),
        "iac_sb_naws_2|rest": (IAC + SB + NAWS + b"\x00\x50", b""),
        "iac|nop": (IAC, NOP), "iac|iac": (IAC, IAC),
    }
    for name, (end_of_first, start_of_second) in cuts.items():
        yield f"seg:{name}", TELNET, (Segments((head + end_of_first, start_of_second + tail + CRLF)),)
    yield "seg:bs|del", TERMINAL, (Segments((target + b"\x08", b"\x7f" + CRLF)),)


# -- negotiation and the session around the password --------------------------------

NEGOTIATIONS = {
    "none": b"",
    "std": (IAC + WONT + ECHO + IAC + WILL + NAWS + IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE
            + IAC + DO + ECHO + IAC + DO + SGA),
    "binary": IAC + DO + ECHO + IAC + DO + SGA + IAC + DO + BINARY + IAC + WILL + BINARY,
    "linemode": IAC + WILL + LINEMODE + IAC + SB + LINEMODE + b"\x01\x01" + IAC + SE + IAC + WILL + NAWS,
    "hostile": (IAC + DONT + ECHO + IAC + WONT + NAWS + IAC + DONT + SGA
                + IAC + SB + TTYPE + b"\x00xterm" + IAC + SE),
    "naws_no_se": IAC + SB + NAWS + b"\x00\x50\x00\x18",    # never closed
    "sb_ttype_3": IAC + SB + TTYPE,                          # bare: blinds an RFC 854 reader for good
}
"""What the client sends as the session opens."""


def session(password: Sequence[Step], negotiation: bytes = b"", flow: str = "normal") -> tuple[Step, ...]:
    """The whole session: open (with `negotiation`), user name, password
    (`password`, typed as `flow` says), wait for the verdict.

    Flows: normal (each line after its prompt), one_segment (user name and
    password in one write), typeahead_after_user (the password right after
    the user name, not waiting for "Password:"), typeahead_before_login
    (everything before the login prompt), user_cr|lf_split, user_cr_iacnop_lf,
    user_per_char (odd user-name line ends), second_attempt (a wrong password
    first), user_echo_prompt (the user name's echo ends in "Password:")."""
    opening: tuple[Step, ...] = (Pause(0.05),) + ((Send(negotiation),) if negotiation else ())
    typed = b"".join(step.data for step in password if isinstance(step, Send))
    user_line = USER + CRLF
    result = (WaitFor("result", RESULT_WAIT),)
    normal = (WaitFor("login"), Send(user_line), WaitFor("password"), *password, *result)
    flows: dict[str, tuple[Step, ...]] = {
        "normal": opening + normal,
        "one_segment": opening + (WaitFor("login"), Send(user_line + typed), *result),
        "typeahead_after_user": opening + (WaitFor("login"), Send(user_line), Send(typed), *result),
        "typeahead_before_login": (Send(negotiation + user_line + typed), *result),
        "user_cr|lf_split": opening + (WaitFor("login"), Segments((USER + b"\r", b"\n")),
                                       WaitFor("password"), *password, *result),
        "user_cr_iacnop_lf": opening + (WaitFor("login"), Send(USER + b"\r" + IAC + NOP + b"\n"),
                                        WaitFor("password"), *password, *result),
        "user_per_char": opening + (WaitFor("login"), Chars(user_line), WaitFor("password"), *password,
                                    *result),
        "second_attempt": opening + (WaitFor("login"), Send(user_line), WaitFor("password"),
                                     Send(b"wrong" + CRLF), *result, *normal),
        "user_echo_prompt": opening + (WaitFor("login"), Send(b"Password:"), Pause(0.2),
                                       Send(b"\x15" + user_line), WaitFor("password"), *password, *result),
    }
    return flows[flow]


def _negotiation_typings(target: bytes) -> Iterator[Typing]:
    """The plain password after each opening negotiation, and a few edits
    under the negotiations that change the terminal's or telnetd's mode."""
    plain = (Send(target + CRLF),)
    for name, negotiation in NEGOTIATIONS.items():
        if name != "none":       # "none" is the baseline, `plain`
            yield Typing(f"neg:{name}", TELNET, target, session(plain, negotiation))
    head, tail = target[:3], target[3:]
    edits = {"bs_then_del": EDIT_INSERTS["bs_then_del"], "lnext": EDIT_INSERTS["lnext"],
             "iac_nop": TELNET_INSERTS["iac_nop"]}
    for name in ("binary", "linemode", "std"):
        for edit, insert in edits.items():
            yield Typing(f"neg:{name}+{edit}", TELNET, target,
                         session((Send(head + insert + tail + CRLF),), NEGOTIATIONS[name]))
        yield Typing(f"neg:{name}+eol:cr", TELNET, target,
                     session((Send(target + b"\r"),), NEGOTIATIONS[name]))


def _timing_typings(target: bytes) -> Iterator[Typing]:
    plain = (Send(target + CRLF),)
    for flow in ("one_segment", "typeahead_after_user", "typeahead_before_login", "user_cr|lf_split",
                 "user_cr_iacnop_lf", "user_per_char"):
        yield Typing(f"flow:{flow}", TIMING, target, session(plain, flow=flow))
    for flow in ("one_segment", "typeahead_after_user"):
        for negotiation in ("std", "binary"):
            yield Typing(f"flow:{flow}+{negotiation}", TIMING, target,
                         session(plain, NEGOTIATIONS[negotiation], flow))
    yield Typing("flow:second_attempt", TIMING, target, session(plain, flow="second_attempt"))
    yield Typing("flow:user_echo_password_prompt", TIMING, target, session(plain, flow="user_echo_prompt"))


def _all_typings() -> list[Typing]:
    typings = [Typing(name, family, target, session(password))
               for target in TARGETS for name, family, password in _password_typings(target)]
    typings += _negotiation_typings(TARGETS[0])
    typings += _timing_typings(TARGETS[0])
    return typings


TYPINGS: list[Typing] = _all_typings()


def select(filters: Sequence[str] = ()) -> list[Typing]:
    """The typings whose label holds one of `filters` (all without any),
    always with the baseline, which the sanity check needs."""
    return [typing for typing in TYPINGS
            if not filters or typing.label == BASELINE or any(part in typing.label for part in filters)]
