#!/usr/bin/env python3
"""Scenario translator: scenario files (docs/scenarios.md) -> POSIX sh scripts.

Each scenario becomes a script for FreeBSD's /bin/sh that runs the real
ngctl(8), kldload(8)/kldunload(8) and the socket helper (sockhelper.c), with
every expectation turned into a shell check that names the scenario file and
line when it fails. The heavy lifting (sessions on a pty, bounded waits, the
socket helper daemon) lives in the runtime library ngslib.sh, which the
generated scripts source; the scripts themselves are a flat, readable list of
library calls, one block per scenario statement.

usage:
  translate.py FILE.ngs...                  print the scripts (one after another)
  translate.py --out-dir DIR FILE.ngs...    write DIR/<name>.sh for each file
  translate.py --check FILE.ngs...          parse only; report errors as file:line
  translate.py --update-golden              regenerate vm-tests/golden/ (from
                                            scenarios/*.ngs) and
                                            vm-tests/tests/golden/ (from the fixtures)

Python 3 standard library only.
"""

import argparse
import ipaddress
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

SCENARIO_DIR = os.path.join(TOP, "scenarios")
GOLDEN_DIR = os.path.join(HERE, "golden")
FIXTURE_DIR = os.path.join(HERE, "tests", "fixtures")
FIXTURE_GOLDEN_DIR = os.path.join(HERE, "tests", "golden")

# FreeBSD errno values and strerror(3) texts, as in lib/libc/gen/errlst.c
# (FreeBSD 15). Symbolic names in "=> error NAME" must come from this table.
ERRNOS = {
    "EPERM": (1, "Operation not permitted"),
    "ENOENT": (2, "No such file or directory"),
    "ESRCH": (3, "No such process"),
    "EINTR": (4, "Interrupted system call"),
    "EIO": (5, "Input/output error"),
    "ENXIO": (6, "Device not configured"),
    "E2BIG": (7, "Argument list too long"),
    "ENOEXEC": (8, "Exec format error"),
    "EBADF": (9, "Bad file descriptor"),
    "ECHILD": (10, "No child processes"),
    "EDEADLK": (11, "Resource deadlock avoided"),
    "ENOMEM": (12, "Cannot allocate memory"),
    "EACCES": (13, "Permission denied"),
    "EFAULT": (14, "Bad address"),
    "ENOTBLK": (15, "Block device required"),
    "EBUSY": (16, "Device busy"),
    "EEXIST": (17, "File exists"),
    "EXDEV": (18, "Cross-device link"),
    "ENODEV": (19, "Operation not supported by device"),
    "ENOTDIR": (20, "Not a directory"),
    "EISDIR": (21, "Is a directory"),
    "EINVAL": (22, "Invalid argument"),
    "ENFILE": (23, "Too many open files in system"),
    "EMFILE": (24, "Too many open files"),
    "ENOTTY": (25, "Inappropriate ioctl for device"),
    "ETXTBSY": (26, "Text file busy"),
    "EFBIG": (27, "File too large"),
    "ENOSPC": (28, "No space left on device"),
    "ESPIPE": (29, "Illegal seek"),
    "EROFS": (30, "Read-only file system"),
    "EMLINK": (31, "Too many links"),
    "EPIPE": (32, "Broken pipe"),
    "EDOM": (33, "Numerical argument out of domain"),
    "ERANGE": (34, "Result too large"),
    "EAGAIN": (35, "Resource temporarily unavailable"),
    "EWOULDBLOCK": (35, "Resource temporarily unavailable"),
    "EINPROGRESS": (36, "Operation now in progress"),
    "EALREADY": (37, "Operation already in progress"),
    "ENOTSOCK": (38, "Socket operation on non-socket"),
    "EDESTADDRREQ": (39, "Destination address required"),
    "EMSGSIZE": (40, "Message too long"),
    "EPROTOTYPE": (41, "Protocol wrong type for socket"),
    "ENOPROTOOPT": (42, "Protocol not available"),
    "EPROTONOSUPPORT": (43, "Protocol not supported"),
    "ESOCKTNOSUPPORT": (44, "Socket type not supported"),
    "EOPNOTSUPP": (45, "Operation not supported"),
    "ENOTSUP": (45, "Operation not supported"),
    "EPFNOSUPPORT": (46, "Protocol family not supported"),
    "EAFNOSUPPORT": (47, "Address family not supported by protocol family"),
    "EADDRINUSE": (48, "Address already in use"),
    "EADDRNOTAVAIL": (49, "Can't assign requested address"),
    "ENETDOWN": (50, "Network is down"),
    "ENETUNREACH": (51, "Network is unreachable"),
    "ENETRESET": (52, "Network dropped connection on reset"),
    "ECONNABORTED": (53, "Software caused connection abort"),
    "ECONNRESET": (54, "Connection reset by peer"),
    "ENOBUFS": (55, "No buffer space available"),
    "EISCONN": (56, "Socket is already connected"),
    "ENOTCONN": (57, "Socket is not connected"),
    "ESHUTDOWN": (58, "Can't send after socket shutdown"),
    "ETOOMANYREFS": (59, "Too many references: can't splice"),
    "ETIMEDOUT": (60, "Operation timed out"),
    "ECONNREFUSED": (61, "Connection refused"),
    "ELOOP": (62, "Too many levels of symbolic links"),
    "ENAMETOOLONG": (63, "File name too long"),
    "EHOSTDOWN": (64, "Host is down"),
    "EHOSTUNREACH": (65, "No route to host"),
    "ENOTEMPTY": (66, "Directory not empty"),
    "EPROCLIM": (67, "Too many processes"),
    "EUSERS": (68, "Too many users"),
    "EDQUOT": (69, "Disc quota exceeded"),
    "ESTALE": (70, "Stale NFS file handle"),
    "EREMOTE": (71, "Too many levels of remote in path"),
    "EBADRPC": (72, "RPC struct is bad"),
    "ERPCMISMATCH": (73, "RPC version wrong"),
    "EPROGUNAVAIL": (74, "RPC prog. not avail"),
    "EPROGMISMATCH": (75, "Program version wrong"),
    "EPROCUNAVAIL": (76, "Bad procedure for program"),
    "ENOLCK": (77, "No locks available"),
    "ENOSYS": (78, "Function not implemented"),
    "EFTYPE": (79, "Inappropriate file type or format"),
    "EAUTH": (80, "Authentication error"),
    "ENEEDAUTH": (81, "Need authenticator"),
    "EIDRM": (82, "Identifier removed"),
    "ENOMSG": (83, "No message of desired type"),
    "EOVERFLOW": (84, "Value too large to be stored in data type"),
    "ECANCELED": (85, "Operation canceled"),
    "EILSEQ": (86, "Illegal byte sequence"),
    "ENOATTR": (87, "Attribute not found"),
    "EDOOFUS": (88, "Programming error"),
    "EBADMSG": (89, "Bad message"),
    "EMULTIHOP": (90, "Multihop attempted"),
    "ENOLINK": (91, "Link has been severed"),
    "EPROTO": (92, "Protocol error"),
    "ENOTCAPABLE": (93, "Capabilities insufficient"),
    "ECAPMODE": (94, "Not permitted in capability mode"),
    "ENOTRECOVERABLE": (95, "State not recoverable"),
    "EOWNERDEAD": (96, "Previous owner died"),
    "EINTEGRITY": (97, "Integrity check failed"),
}

# Our modules: "kldload ng_ksocket" loads ours from NGS_KO_DIR.
OUR_MODULES = ("ng_socket", "ng_ksocket")

# Timeouts the scenario format fixes (docs/scenarios.md).
RECV_TIMEOUT_MS = 2000      # recv, recv-from, eof, S: expect
SILENT_MS = 200             # silent
CONNECT_TIMEOUT_MS = 2000   # tcp connect / accept ("blocking, bounded")
MAX_WAIT_MS = 60000         # wait MS
SESSION_FDS = (3, 4, 5, 6, 7, 8)  # one shell fd per open session

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SYSCTL_RE = re.compile(r"^([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)(?:=(-?[0-9]+))?$")
MODULE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
HEXBYTE_RE = re.compile(r"^0[xX][0-9a-fA-F]{1,2}$")


class ScenarioError(Exception):
    """A statement the translator rejects; str() is 'file:line: message'."""

    def __init__(self, path, line, message):
        super().__init__("%s:%d: %s" % (path, line, message))
        self.path = path
        self.line = line
        self.message = message


# --------------------------------------------------------------------------
# Lexing


class Word:
    """One word of a statement: its text (escapes decoded) and whether it was quoted."""

    __slots__ = ("text", "quoted")

    def __init__(self, text, quoted):
        self.text = text
        self.quoted = quoted

    def __repr__(self):
        return "Word(%r, %r)" % (self.text, self.quoted)


def _lex_error(msg):
    raise ValueError(msg)


def tokenize(line):
    """Split a statement into words: blanks separate words; a word that starts
    with '"' is a quoted string with C escapes (\\n \\t \\\\ \\" \\xHH) and must
    end with '"' followed by a blank or the end of the line; any other word is
    taken verbatim (a '"' inside it is an ordinary character)."""
    words = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return words
        if line[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    _lex_error("unterminated quoted string")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        _lex_error("unterminated quoted string")
                    e = line[i + 1]
                    if e == "n":
                        buf.append("\n")
                        i += 2
                    elif e == "t":
                        buf.append("\t")
                        i += 2
                    elif e == "\\":
                        buf.append("\\")
                        i += 2
                    elif e == '"':
                        buf.append('"')
                        i += 2
                    elif e == "x":
                        hx = line[i + 2:i + 4]
                        if len(hx) != 2 or not all(h in "0123456789abcdefABCDEF" for h in hx):
                            _lex_error("bad escape \\x%s (want \\xHH, two hex digits)" % hx)
                        buf.append(chr(int(hx, 16)))
                        i += 4
                    else:
                        _lex_error("unknown escape \\%s in quoted string "
                                   "(known: \\n \\t \\\\ \\\" \\xHH)" % e)
                else:
                    buf.append(c)
                    i += 1
            if i < n and line[i] not in " \t":
                _lex_error("a quoted string must be followed by a blank or the end of the line")
            words.append(Word("".join(buf), True))
        else:
            j = i
            while j < n and line[j] not in " \t":
                j += 1
            words.append(Word(line[i:j], False))
            i = j


# --------------------------------------------------------------------------
# Helpers for values


def parse_payload(words):
    """PAYLOAD: one quoted string, or one or more hex bytes (0xHH). Returns bytes."""
    if not words:
        raise ValueError("missing payload (a quoted string or hex bytes such as 0x68 0x69)")
    if len(words) == 1 and words[0].quoted:
        data = words[0].text
        if any(ord(c) > 255 for c in data):
            raise ValueError("payload string has a character above \\xff; use \\xHH escapes")
        return data.encode("latin-1")
    out = bytearray()
    for w in words:
        if w.quoted:
            raise ValueError("a payload is one quoted string or a list of hex bytes, not both")
        if not HEXBYTE_RE.match(w.text):
            raise ValueError("bad payload byte %r (want 0xHH)" % w.text)
        out.append(int(w.text, 16))
    return bytes(out)


def parse_addr(text):
    """ADDR:PORT (IPv4) or [ADDR]:PORT (IPv6). Returns (addr, port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ValueError("bad address %r (want [IPV6]:PORT)" % text)
        host, port = text[1:end], text[end + 2:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("bad IPv6 address in %r" % text) from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError("bad address %r (want ADDR:PORT)" % text)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError("bad IPv4 address in %r (want e.g. 127.0.0.1:7777)" % text) from None
    if not port.isdigit() or int(port) > 65535:
        raise ValueError("bad port in %r (want 0..65535)" % text)
    return host, int(port)


def shq(s):
    """Quote a string for POSIX sh (single quotes)."""
    if s == "":
        return "''"
    if re.match(r"^[A-Za-z0-9_@%+=:,./-]+$", s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def ere_escape_char(c):
    """c as a literal in a POSIX ERE: a backslash before the characters
    special outside brackets (']' and '}' are ordinary there)."""
    if c in ".[\\()*+?{|^$":
        return "\\" + c
    return c


def pattern_to_ere(pattern):
    """A scenario PATTERN as a POSIX extended regular expression that matches
    a whole output line, with the host harness's rules (harness/src/scenario/
    pattern.rs): '*' matches any run of characters, '{id}' a node ID in
    ngctl's hex form ([0-9a-f]+), a run of blanks in the pattern matches the
    same run in the output or any run of blanks that holds a tab (ngctl
    prints 'Args:' and the like with a tab), and leading and trailing blanks
    of the output line are ignored."""
    pattern = pattern.strip(" \t")
    out = ["^[ \t]*"]
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("{id}", i):
            out.append("[0-9a-f]+")
            i += 4
            continue
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append(".*")
            continue
        if c in " \t":
            j = i
            while j < n and pattern[j] in " \t":
                j += 1
            out.append("(" + pattern[i:j] + "|[ \t]*\t[ \t]*)")
            i = j
            continue
        out.append(ere_escape_char(c))
        i += 1
    out.append("[ \t]*$")
    return "".join(out)


def strerror_ere(text):
    return "".join(ere_escape_char(c) for c in text)


def ngctl_words(words):
    """The words of an ngctl command as ngctl's argv: each word's text, quotes
    removed and escapes decoded (as the host harness passes them)."""
    out = []
    for w in words:
        if "\0" in w.text:
            raise ValueError("a NUL byte cannot be passed to ngctl")
        out.append(w.text)
    return out


def session_line(words):
    """An interactive ngctl splits its input lines at blanks (strtok), so a
    session command is its words joined by one blank; a word that holds a
    blank, a newline or nothing cannot be typed as one word."""
    argv = ngctl_words(words)
    for a in argv:
        if a == "" or any(c in a for c in " \t\n\r\v\f"):
            raise ValueError("the session command word %r cannot be typed into an interactive "
                             "ngctl as one word (it splits lines at blanks)" % a)
    return " ".join(argv)


def error_ere(kind, op, errno_name, text):
    """The output line, as an ERE, by which a command reports errno_name."""
    t = strerror_ere(text)
    if kind in ("ngctl", "session-start", "session-cmd"):
        return "^[ \t]*ngctl: .*: " + t + "[ \t]*$"
    if kind == "sysctl":
        # sysctl(8): its own texts for an unknown or read-only OID and for a
        # bad value, warn(3) with "NAME=VALUE" for a failed write.
        if errno_name == "ENOENT":
            return "^sysctl: unknown oid '.*'$"
        if errno_name == "EPERM":
            return "^sysctl: (oid '.*' is read only|.*: " + t + ")$"
        if errno_name == "EINVAL":
            return "^sysctl: (invalid integer '.*'|.*: " + t + ")$"
        return "^sysctl: .*: " + t + "$"
    if kind == "kld" and op == "load":
        # kldload(8): EEXIST and ENOEXEC have their own messages.
        if errno_name == "EEXIST":
            return "^kldload: can't load .*: module already loaded or in kernel$"
        if errno_name == "ENOEXEC":
            return "^kldload: an error occurred while loading module .*"
        return "^kldload: can't load .*: " + t + "$"
    if kind == "kld":
        # kldunload(8): a module that is not loaded is "can't find file".
        if errno_name == "ENOENT":
            return "^kldunload: (can't find file .*|can't unload file: " + t + ")$"
        return "^kldunload: can't unload file: " + t + "$"
    return "^sockhelper: .*: " + t + "$"


# --------------------------------------------------------------------------
# Parsing

# Command kinds. PROCESS kinds have an exit status and output ("=> exit",
# "|", "!|"); FAILING kinds can fail ("=> ok", "=> error", and the implied
# "=> ok"). As in the host harness (harness/src/scenario/parse.rs).
PROCESS_KINDS = ("ngctl", "session-start", "session-cmd", "kld", "sysctl")
FAILING_KINDS = PROCESS_KINDS + ("sock",)
COMMAND_KINDS = FAILING_KINDS + ("close", "as", "wait")


class Stmt:
    """One statement: kind, line number, original text, and kind-specific fields."""

    def __init__(self, kind, line, text, **fields):
        self.kind = kind
        self.line = line
        self.text = text
        self.__dict__.update(fields)
        self.has_status = False   # commands: an explicit "=>" follows


class Scenario:
    def __init__(self, path):
        self.path = path
        self.title = ""
        self.requires = []
        self.specs = []
        self.stmts = []


def parse(path, text):
    """Parse scenario text. Raises ScenarioError (file:line) on the first bad statement."""
    sc = Scenario(path)
    who = "root"
    sessions = {}          # name -> shell fd, for open sessions
    sockets = {}           # name -> "udp" | "listen" | "stream"
    last = None            # the most recent command

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue

        def err(msg):
            raise ScenarioError(path, lineno, msg)

        def expectation(st, needs):
            """Attach expectation st to the most recent command, if it takes it."""
            if last is None:
                err("expectation %r before any command" % line)
            if needs == "process" and last.kind not in PROCESS_KINDS:
                what = ("'=> exit' applies only to ngctl, session commands, kldload, kldunload "
                        "and sysctl" if st.kind == "exit" else "the command has no output to match")
                err("%r: %s (most recent command: line %d)" % (line, what, last.line))
            if needs == "failing" and last.kind not in FAILING_KINDS:
                err("%r: this command cannot fail (most recent command: line %d)"
                    % (line, last.line))
            st.target = last
            sc.stmts.append(st)

        def command(st):
            nonlocal last
            sc.stmts.append(st)
            last = st

        def need_session(name):
            if name not in sessions:
                err("%s: no open session named %s" % (name + ":", name))

        # "|" and "!|" patterns keep every character of the raw text.
        if line.startswith("!|") or line.startswith("|"):
            neg = line.startswith("!|")
            pat = line[2 if neg else 1:].strip(" \t")
            if not pat:
                err("empty pattern")
            expectation(Stmt("nomatch" if neg else "match", lineno, line, pattern=pat,
                             ere=pattern_to_ere(pat)), "process")
            continue

        # "S: expect PATTERN" too.
        m = re.match(r"^([^\s\"][^\s]*):[ \t]+expect(?:[ \t]+(.*))?$", line)
        if m:
            name = m.group(1)
            need_session(name)
            pat = (m.group(2) or "").strip(" \t")
            if not pat:
                err("empty pattern")
            expectation(Stmt("expect", lineno, line, session=name, pattern=pat,
                             ere=pattern_to_ere(pat)), None)
            continue

        try:
            words = tokenize(line)
        except ValueError as e:
            err(str(e))
        if words[0].quoted:
            err("unknown statement %r" % line)
        head = words[0].text
        rest = words[1:]
        texts = [w.text for w in rest]

        if head == "=>":
            if texts == ["ok"]:
                expectation(Stmt("ok", lineno, line), "failing")
            elif len(texts) == 2 and texts[0] == "error":
                if texts[1] not in ERRNOS:
                    err("unknown errno name %r (FreeBSD's symbolic names, e.g. EINVAL)" % texts[1])
                expectation(Stmt("error", lineno, line, errno=texts[1],
                                 strerror=ERRNOS[texts[1]][1]), "failing")
            elif len(texts) == 2 and texts[0] == "exit":
                if not texts[1].isdigit() or int(texts[1]) > 255:
                    err("bad exit status %r" % texts[1])
                st = Stmt("exit", lineno, line, status=int(texts[1]))
                if last is not None and last.kind == "session-cmd" and st.status not in (0, 64, 71):
                    err("'=> exit %d' after a session command: an interactive ngctl shows only "
                        "success (0), a usage error (64) or an error (71)" % st.status)
                expectation(st, "process")
            else:
                err("usage: => ok | => error ERRNO | => exit N")
            last.has_status = True
            continue

        if head in ("scenario", "require", "spec"):
            if last is not None:
                err("header statement %r after the first command" % head)
            if head == "scenario":
                title = line[len("scenario"):].strip()
                if not title:
                    err("usage: scenario TEXT")
                if sc.title:
                    err("a second 'scenario' title")
                sc.title = title
            elif head == "require":
                if not rest:
                    err("usage: require MODULE...")
                for t in texts:
                    if not NAME_RE.match(t):
                        err("bad module name %r" % t)
                    sc.requires.append(t)
            else:
                if not rest:
                    err("usage: spec REF...")
                sc.specs.extend(texts)
            continue

        if head == "ngctl":
            try:
                argv = ngctl_words(rest)
            except ValueError as e:
                err(str(e))
            command(Stmt("ngctl", lineno, line, argv=argv, who=who))

        elif head == "session":
            if len(rest) != 1:
                err("usage: session S")
            name = texts[0]
            if not NAME_RE.match(name):
                err("bad session name %r" % name)
            if name in sessions:
                err("session %s is already open" % name)
            free = [fd for fd in SESSION_FDS if fd not in sessions.values()]
            if not free:
                err("too many open sessions (at most %d at once on FreeBSD)" % len(SESSION_FDS))
            sessions[name] = free[0]
            command(Stmt("session-start", lineno, line, session=name, fd=free[0], who=who))

        elif head == "close":
            if len(rest) != 1:
                err("usage: close S")
            name = texts[0]
            if name not in sessions:
                err("close %s: no such open session" % name)
            command(Stmt("close", lineno, line, session=name, fd=sessions.pop(name)))

        elif head in ("kldload", "kldunload"):
            if len(rest) != 1:
                err("usage: %s MODULE" % head)
            if not MODULE_RE.match(texts[0]):
                err("bad module name %r" % texts[0])
            command(Stmt("kld", lineno, line, op="load" if head == "kldload" else "unload",
                         module=texts[0], who=who))

        elif head == "sysctl":
            m = SYSCTL_RE.match(texts[0]) if len(texts) == 1 else None
            if m is None:
                err("usage: sysctl NAME | sysctl NAME=VALUE (a dotted name, a decimal integer)")
            command(Stmt("sysctl", lineno, line, name=m.group(1), value=m.group(2), who=who))

        elif head == "as":
            if texts not in (["root"], ["user"]):
                err("usage: as root | as user")
            who = texts[0]
            command(Stmt("as", lineno, line, who=who))

        elif head == "wait":
            if len(texts) != 1:
                err("usage: wait MS")
            if not texts[0].isdigit():
                err("wait: bad number of milliseconds %r" % texts[0])
            if int(texts[0]) > MAX_WAIT_MS:
                err("wait: at most %d ms" % MAX_WAIT_MS)
            command(Stmt("wait", lineno, line, ms=int(texts[0])))

        elif head == "udp":
            if len(rest) < 2:
                err("usage: udp NAME bind ADDR:PORT | udp NAME send ADDR:PORT PAYLOAD")
            name, verb = texts[0], texts[1]
            if not NAME_RE.match(name):
                err("bad socket name %r" % name)
            try:
                if verb == "bind":
                    if len(rest) != 3:
                        err("usage: udp NAME bind ADDR:PORT")
                    addr, port = parse_addr(texts[2])
                    if name in sockets:
                        err("socket %s already exists" % name)
                    sockets[name] = "udp"
                    args = ["udp", name, "bind", addr, str(port)]
                elif verb == "send":
                    if len(rest) < 3:
                        err("usage: udp NAME send ADDR:PORT PAYLOAD")
                    if sockets.get(name) != "udp":
                        err("no UDP socket named %s (use 'udp %s bind ADDR:PORT' first)"
                            % (name, name))
                    addr, port = parse_addr(texts[2])
                    data = parse_payload(rest[3:])
                    args = ["udp", name, "send", addr, str(port), data.hex() or "-"]
                else:
                    err("unknown udp action %r" % verb)
            except ValueError as e:
                err(str(e))
            command(Stmt("sock", lineno, line, args=args))

        elif head == "tcp":
            if len(rest) < 2:
                err("usage: tcp NAME listen|connect ADDR:PORT | accept FROM | send PAYLOAD | close")
            name, verb = texts[0], texts[1]
            if not NAME_RE.match(name):
                err("bad socket name %r" % name)
            try:
                if verb in ("listen", "connect"):
                    if len(rest) != 3:
                        err("usage: tcp NAME %s ADDR:PORT" % verb)
                    addr, port = parse_addr(texts[2])
                    if name in sockets:
                        err("socket %s already exists" % name)
                    sockets[name] = "listen" if verb == "listen" else "stream"
                    args = ["tcp", name, verb, addr, str(port)]
                    if verb == "connect":
                        args.append(str(CONNECT_TIMEOUT_MS))
                elif verb == "accept":
                    if len(rest) != 3:
                        err("usage: tcp NAME accept FROM")
                    if sockets.get(texts[2]) != "listen":
                        err("no listening TCP socket named %s" % texts[2])
                    if name in sockets:
                        err("socket %s already exists" % name)
                    sockets[name] = "stream"
                    args = ["tcp", name, "accept", texts[2], str(CONNECT_TIMEOUT_MS)]
                elif verb == "send":
                    if sockets.get(name) != "stream":
                        err("no connected TCP socket named %s" % name)
                    args = ["tcp", name, "send", parse_payload(rest[2:]).hex() or "-"]
                elif verb == "close":
                    if len(rest) != 2:
                        err("usage: tcp NAME close")
                    if sockets.get(name) not in ("stream", "listen"):
                        err("no TCP socket named %s" % name)
                    args = ["tcp", name, "close"]
                else:
                    err("unknown tcp action %r" % verb)
            except ValueError as e:
                err(str(e))
            command(Stmt("sock", lineno, line, args=args))

        elif head.endswith(":") and len(head) > 1:
            name = head[:-1]
            need_session(name)
            try:
                cmdline = session_line(rest)
            except ValueError as e:
                err(str(e))
            command(Stmt("session-cmd", lineno, line, session=name, cmdline=cmdline))

        elif head in sockets:
            name = head
            kind = sockets[name]
            verb = texts[0] if texts else ""
            more = rest[1:]
            try:
                if verb == "recv" and kind != "listen":
                    args = ["recv", name, parse_payload(more).hex() or "-", str(RECV_TIMEOUT_MS)]
                elif verb == "recv-from" and kind == "udp":
                    if not more:
                        err("usage: NAME recv-from ADDR:PORT PAYLOAD")
                    addr, port = parse_addr(more[0].text)
                    args = ["recvfrom", name, addr, str(port), parse_payload(more[1:]).hex() or "-",
                            str(RECV_TIMEOUT_MS)]
                elif verb == "silent" and not more and kind != "listen":
                    args = ["silent", name, str(SILENT_MS)]
                elif verb == "eof" and not more and kind == "stream":
                    args = ["eof", name, str(RECV_TIMEOUT_MS)]
                elif verb in ("recv", "recv-from", "silent", "eof"):
                    err("%r does not apply to socket %s (%s) or has bad arguments"
                        % (verb, name, kind))
                else:
                    err("unknown statement %r" % line)
            except ValueError as e:
                err(str(e))
            expectation(Stmt("sockexpect", lineno, line, args=args), None)

        else:
            err("unknown statement %r" % line)

    return sc


# --------------------------------------------------------------------------
# Rendering


def render(sc, display_path):
    """The shell script for a parsed scenario."""
    out = []
    w = out.append
    w("#!/bin/sh")
    w("# Generated by vm-tests/translate.py from %s: do not edit." % display_path)
    w("# Runs on FreeBSD 15 with the real ngctl(8); see vm-tests/README.md.")
    if sc.specs:
        w("# spec: %s" % " ".join(sc.specs))
    w(". \"${NGS_LIB:-$(dirname \"$0\")/ngslib.sh}\"")
    w("ngs_begin %s %s" % (shq(display_path), shq(sc.title)))
    if sc.requires:
        w("ngs_require %s" % " ".join(shq(m) for m in sc.requires))

    # Which result statements need the implied "=> ok" right after them.
    for st in sc.stmts:
        w("")
        w("ngs_at %d %s" % (st.line, shq(st.text)))
        k = st.kind
        if k == "ngctl":
            w("ngs_ngctl %s %s" % (st.who, " ".join(shq(a) for a in st.argv)))
        elif k == "session-start":
            w("ngs_session_start %s %d %s" % (st.session, st.fd, st.who))
        elif k == "session-cmd":
            w("ngs_session_cmd %s %s" % (st.session, shq(st.cmdline)))
        elif k == "close":
            w("ngs_session_close %s" % st.session)
        elif k == "kld":
            w("ngs_kld %s %s %s" % (st.op, st.who, shq(st.module)))
        elif k == "sysctl":
            w("ngs_sysctl %s %s%s" % (st.who, shq(st.name),
                                      "" if st.value is None else " " + shq(st.value)))
        elif k == "sock":
            w("ngs_sock %s" % " ".join(shq(a) for a in st.args))
        elif k == "as":
            w("# credentials for the following commands: %s" % st.who)
        elif k == "wait":
            w("ngs_wait %d" % st.ms)
        elif k == "ok":
            w("ngs_ok")
        elif k == "error":
            t = st.target
            w("ngs_error %s %s %s" % (st.errno, shq(st.strerror),
                                      shq(error_ere(t.kind, getattr(t, "op", None),
                                                    st.errno, st.strerror))))
        elif k == "exit":
            w("ngs_exit %d" % st.status)
        elif k == "match":
            w("ngs_match %s %s" % (shq(st.ere), shq(st.pattern)))
        elif k == "nomatch":
            w("ngs_nomatch %s %s" % (shq(st.ere), shq(st.pattern)))
        elif k == "expect":
            w("ngs_session_expect %s %s %s %d" % (st.session, shq(st.ere), shq(st.pattern),
                                                  RECV_TIMEOUT_MS))
        elif k == "sockexpect":
            w("ngs_sock_expect %s" % " ".join(shq(a) for a in st.args))
        else:  # pragma: no cover
            raise AssertionError(k)
        if k in FAILING_KINDS and not st.has_status:
            w("ngs_ok  # implied: no '=>' follows")
    w("")
    w("ngs_end")
    return "\n".join(out) + "\n"


def display_path(path):
    """The scenario's path as shown in scripts and messages: relative to the
    repository when it is inside it."""
    ap = os.path.abspath(path)
    rel = os.path.relpath(ap, TOP)
    return rel if not rel.startswith("..") else ap


def translate_file(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    dp = display_path(path)
    return render(parse(dp, text), dp)


def script_name(path):
    base = os.path.basename(path)
    if base.endswith(".ngs"):
        base = base[:-4]
    return base + ".sh"


def golden_pairs():
    """(scenario file, golden file) for every scenario and fixture."""
    pairs = []
    for src_dir, gold_dir in ((SCENARIO_DIR, GOLDEN_DIR), (FIXTURE_DIR, FIXTURE_GOLDEN_DIR)):
        if os.path.isdir(src_dir):
            for name in sorted(os.listdir(src_dir)):
                if name.endswith(".ngs"):
                    pairs.append((os.path.join(src_dir, name),
                                  os.path.join(gold_dir, script_name(name))))
    return pairs


def update_golden():
    wanted = {}
    for src, gold in golden_pairs():
        wanted[gold] = translate_file(src)
    for gold_dir in (GOLDEN_DIR, FIXTURE_GOLDEN_DIR):
        os.makedirs(gold_dir, exist_ok=True)
        for name in os.listdir(gold_dir):
            p = os.path.join(gold_dir, name)
            if name.endswith(".sh") and p not in wanted:
                os.remove(p)
                print("removed stale %s" % os.path.relpath(p, TOP))
    for gold, text in sorted(wanted.items()):
        old = None
        if os.path.exists(gold):
            with open(gold, encoding="utf-8", newline="") as f:
                old = f.read()
        if old != text:
            with open(gold, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            print("wrote %s" % os.path.relpath(gold, TOP))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Translate scenario files to FreeBSD sh scripts.")
    ap.add_argument("files", nargs="*", help="scenario files (*.ngs)")
    ap.add_argument("--out-dir", help="write <name>.sh for each file into this directory")
    ap.add_argument("--check", action="store_true", help="parse only")
    ap.add_argument("--update-golden", action="store_true",
                    help="regenerate the golden scripts of scenarios/ and the test fixtures")
    args = ap.parse_args(argv)

    if args.update_golden:
        try:
            return update_golden()
        except ScenarioError as e:
            print("translate: %s" % e, file=sys.stderr)
            return 1
    if not args.files:
        ap.error("no scenario files given")
    status = 0
    for path in args.files:
        try:
            script = translate_file(path)
        except ScenarioError as e:
            print("translate: %s" % e, file=sys.stderr)
            status = 1
            continue
        except OSError as e:
            print("translate: %s: %s" % (path, e.strerror), file=sys.stderr)
            status = 1
            continue
        if args.check:
            continue
        if args.out_dir:
            os.makedirs(args.out_dir, exist_ok=True)
            with open(os.path.join(args.out_dir, script_name(path)), "w", encoding="utf-8",
                      newline="") as f:
                f.write(script)
        else:
            sys.stdout.write(script)
    return status


if __name__ == "__main__":
    sys.exit(main())
