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
    if c in ".[()*+?{}|$":
        return "[" + c + "]"
    if c == "^":
        return "\\^"
    if c == "\\":
        return "\\\\"
    return c


def pattern_to_ere(pattern):
    """A scenario PATTERN as a POSIX extended regular expression matching a
    whole line: '*' matches any run of characters, '{id}' a node ID in
    ngctl's hex form ([0-9a-f]+), and blanks also match a tab (ngctl's output
    separates 'Args:' and the like with a tab): one blank matches a blank or
    a tab, a run of N blanks matches N blanks or a tab, and a run with a tab
    in it matches any run of blanks and tabs."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("{id}", i):
            out.append("[0-9a-f]+")
            i += 4
            continue
        c = pattern[i]
        if c == "*":
            out.append(".*")
            i += 1
        elif c in " \t":
            j = i
            while j < n and pattern[j] in " \t":
                j += 1
            run = pattern[i:j]
            if "\t" in run:
                out.append("[ \t]+")
            elif len(run) == 1:
                out.append("[ \t]")
            else:
                out.append("(" + run + "|\t)")
            i = j
        else:
            out.append(ere_escape_char(c))
            i += 1
    out.append("$")
    return "".join(out)


def strerror_ere(text):
    return "".join(ere_escape_char(c) for c in text)


def ngctl_word(word, payload_bytes=None):
    """A scenario word as ngctl command text. Quoted words keep their quotes
    (re-encoded as a C string, which is what ngctl's ASCII message parser
    reads); bare words are passed unchanged."""
    if not word.quoted:
        return word.text
    out = ['"']
    for c in word.text:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or o >= 0x7f:
            out.append("\\%03o" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def ngctl_words(words):
    """The words of an ngctl command line as ngctl argv. `write HOOK PAYLOAD`
    with a quoted payload becomes ngctl's byte list (ngctl's write takes bytes
    only); everything else is passed as ngctl command text."""
    if len(words) >= 3 and not words[0].quoted and words[0].text \
            and "write".startswith(words[0].text.lower()) \
            and any(w.quoted for w in words[2:]):
        data = parse_payload(words[2:])
        return [words[0].text, ngctl_word(words[1])] + ["0x%02x" % b for b in data]
    return [ngctl_word(w) for w in words]


# --------------------------------------------------------------------------
# Parsing

RESULT_KINDS = ("ngctl", "session-start", "session-cmd", "close", "kld", "sock")


class Stmt:
    """One statement: kind, line number, original text, and kind-specific fields."""

    def __init__(self, kind, line, text, **fields):
        self.kind = kind
        self.line = line
        self.text = text
        self.__dict__.update(fields)
        self.has_status = False   # result statements: an explicit "=>" follows


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
    in_header = True
    who = "root"
    sessions = {}          # name -> fd, for open sessions
    closed_sessions = set()
    sockets = {}           # name -> "udp" | "tcp-listen" | "tcp" | "closed"
    last_result = None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def err(msg):
            raise ScenarioError(path, lineno, msg)

        # Expectations on the most recent command: "=>", "|", "!|".
        if line.startswith("|") or line.startswith("!|"):
            neg = line.startswith("!|")
            pat = line[2:] if neg else line[1:]
            pat = pat.lstrip(" \t")
            if not pat:
                err("empty pattern after '%s'" % ("!|" if neg else "|"))
            if last_result is None:
                err("'%s' before any command: an expectation applies to the most recent command"
                    % ("!|" if neg else "|"))
            sc.stmts.append(Stmt("nomatch" if neg else "match", lineno, line, pattern=pat,
                                 ere=pattern_to_ere(pat), target=last_result))
            in_header = False
            continue

        # "S: expect PATTERN": the pattern is raw text, like "|" patterns.
        m = re.match(r"^([^\s\"]+):[ \t]+expect(?:[ \t]+(.*))?$", line)
        if m:
            name = m.group(1)
            if name not in sessions:
                if name in closed_sessions:
                    err("session %r is closed" % name)
                err("no session %r (start it with 'session %s')" % (name, name))
            pat = (m.group(2) or "").strip(" \t")
            if not pat:
                err("'%s: expect' needs a pattern" % name)
            sc.stmts.append(Stmt("expect", lineno, line, session=name, pattern=pat,
                                 ere=pattern_to_ere(pat)))
            in_header = False
            continue

        try:
            words = tokenize(line)
        except ValueError as e:
            err(str(e))
        head = words[0].text if not words[0].quoted else None
        rest = words[1:]

        if head == "=>":
            if last_result is None:
                err("'=>' before any command: an expectation applies to the most recent command")
            if last_result.has_status:
                err("a second '=>' for the command on line %d" % last_result.line)
            if not rest:
                err("'=>' needs ok, error ERRNO or exit N")
            what = rest[0].text
            if what == "ok" and len(rest) == 1:
                st = Stmt("ok", lineno, line, target=last_result)
            elif what == "error" and len(rest) == 2:
                name = rest[1].text
                if name not in ERRNOS:
                    err("unknown errno %r (use FreeBSD's symbolic names, e.g. EINVAL)" % name)
                num, msg = ERRNOS[name]
                st = Stmt("error", lineno, line, errno=name, errnum=num, strerror=msg,
                          target=last_result)
            elif what == "exit" and len(rest) == 2:
                if not rest[1].text.isdigit() or int(rest[1].text) > 255:
                    err("bad exit status %r (want 0..255)" % rest[1].text)
                if last_result.kind == "session-cmd":
                    err("'=> exit' is not available for a session command: an interactive ngctl "
                        "has no exit status per command (use '=> ok' or '=> error ERRNO')")
                if last_result.kind == "sock":
                    err("'=> exit' is not available for a socket action (use '=> ok' or "
                        "'=> error ERRNO')")
                st = Stmt("exit", lineno, line, status=int(rest[1].text), target=last_result)
            else:
                err("bad expectation %r: want '=> ok', '=> error ERRNO' or '=> exit N'" % line)
            if last_result.kind == "session-start" and st.kind != "ok":
                # A session that is expected to fail to start is not open afterwards.
                name = last_result.session
                sessions.pop(name, None)
                closed_sessions.add(name)
            last_result.has_status = True
            sc.stmts.append(st)
            in_header = False
            continue

        if head in ("scenario", "require", "spec"):
            if not in_header:
                err("'%s' is a header statement: it must come before the first command" % head)
            if head == "scenario":
                if not rest:
                    err("'scenario' needs a title")
                sc.title = line[len("scenario"):].strip()
            elif head == "require":
                if not rest:
                    err("'require' needs at least one module")
                for w in rest:
                    if not MODULE_RE.match(w.text):
                        err("bad module name %r" % w.text)
                    sc.requires.append(w.text)
            else:
                if not rest:
                    err("'spec' needs at least one reference, e.g. ksocket.md:K4")
                sc.specs.extend(w.text for w in rest)
            continue

        in_header = False

        def result(st):
            nonlocal last_result
            sc.stmts.append(st)
            last_result = st

        if head == "ngctl":
            if not rest:
                err("'ngctl' needs a command")
            try:
                argv = ngctl_words(rest)
            except ValueError as e:
                err(str(e))
            result(Stmt("ngctl", lineno, line, argv=argv, who=who))

        elif head == "session":
            if len(rest) != 1 or not NAME_RE.match(rest[0].text):
                err("want 'session NAME' (NAME: letters, digits, _)")
            name = rest[0].text
            if name in sessions:
                err("session %r is already open" % name)
            free = [fd for fd in SESSION_FDS if fd not in sessions.values()]
            if not free:
                err("too many open sessions (at most %d at once)" % len(SESSION_FDS))
            sessions[name] = free[0]
            closed_sessions.discard(name)
            result(Stmt("session-start", lineno, line, session=name, fd=free[0], who=who))

        elif head == "close":
            if len(rest) != 1:
                err("want 'close NAME'")
            name = rest[0].text
            if name not in sessions:
                err("no open session %r" % name)
            fd = sessions.pop(name)
            closed_sessions.add(name)
            result(Stmt("close", lineno, line, session=name, fd=fd))

        elif head in ("kldload", "kldunload"):
            if len(rest) != 1 or not MODULE_RE.match(rest[0].text):
                err("want '%s MODULE'" % head)
            result(Stmt("kld", lineno, line, op="load" if head == "kldload" else "unload",
                        module=rest[0].text, who=who))

        elif head == "as":
            if len(rest) != 1 or rest[0].text not in ("root", "user"):
                err("want 'as root' or 'as user'")
            who = rest[0].text
            sc.stmts.append(Stmt("as", lineno, line, who=who))

        elif head == "wait":
            if len(rest) != 1 or not rest[0].text.isdigit():
                err("want 'wait MS' (milliseconds)")
            ms = int(rest[0].text)
            if ms > MAX_WAIT_MS:
                err("wait %d ms is over the %d ms bound" % (ms, MAX_WAIT_MS))
            sc.stmts.append(Stmt("wait", lineno, line, ms=ms))

        elif head == "udp":
            if len(rest) < 2 or not NAME_RE.match(rest[0].text):
                err("want 'udp NAME bind ADDR:PORT' or 'udp NAME send ADDR:PORT PAYLOAD'")
            name, op = rest[0].text, rest[1].text
            kind = sockets.get(name)
            if kind not in (None, "udp"):
                err("socket %r is a %s socket, not udp" % (name, kind))
            try:
                if op == "bind" and len(rest) == 3:
                    addr, port = parse_addr(rest[2].text)
                    args = ["udp", name, "bind", addr, str(port)]
                elif op == "send" and len(rest) >= 4:
                    addr, port = parse_addr(rest[2].text)
                    data = parse_payload(rest[3:])
                    args = ["udp", name, "send", addr, str(port), data.hex() or "-"]
                else:
                    err("want 'udp NAME bind ADDR:PORT' or 'udp NAME send ADDR:PORT PAYLOAD'")
            except ValueError as e:
                err(str(e))
            sockets[name] = "udp"
            result(Stmt("sock", lineno, line, args=args))

        elif head == "tcp":
            if len(rest) < 2 or not NAME_RE.match(rest[0].text):
                err("want 'tcp NAME listen|connect ADDR:PORT', 'tcp NAME accept FROM', "
                    "'tcp NAME send PAYLOAD' or 'tcp NAME close'")
            name, op = rest[0].text, rest[1].text
            kind = sockets.get(name)
            try:
                if op in ("listen", "connect") and len(rest) == 3:
                    if kind in ("udp",):
                        err("socket %r is a udp socket" % name)
                    if kind in ("tcp", "tcp-listen"):
                        err("tcp socket %r is already open (close it first)" % name)
                    addr, port = parse_addr(rest[2].text)
                    args = ["tcp", name, op, addr, str(port)]
                    if op == "connect":
                        args.append(str(CONNECT_TIMEOUT_MS))
                    sockets[name] = "tcp-listen" if op == "listen" else "tcp"
                elif op == "accept" and len(rest) == 3:
                    frm = rest[2].text
                    if sockets.get(frm) != "tcp-listen":
                        err("'tcp %s accept %s': %r is not a listening tcp socket" % (name, frm, frm))
                    if kind in ("udp", "tcp", "tcp-listen"):
                        err("socket %r is already open" % name)
                    args = ["tcp", name, "accept", frm, str(CONNECT_TIMEOUT_MS)]
                    sockets[name] = "tcp"
                elif op == "send" and len(rest) >= 3:
                    if kind != "tcp":
                        err("'tcp %s send': %r is not a connected tcp socket" % (name, name))
                    args = ["tcp", name, "send", parse_payload(rest[2:]).hex() or "-"]
                elif op == "close" and len(rest) == 2:
                    if kind not in ("tcp", "tcp-listen"):
                        err("'tcp %s close': no open tcp socket %r" % (name, name))
                    args = ["tcp", name, "close"]
                    sockets[name] = "closed"
                else:
                    err("want 'tcp NAME listen|connect ADDR:PORT', 'tcp NAME accept FROM', "
                        "'tcp NAME send PAYLOAD' or 'tcp NAME close'")
            except ValueError as e:
                err(str(e))
            result(Stmt("sock", lineno, line, args=args))

        elif head is not None and head.endswith(":") and len(head) > 1:
            name = head[:-1]
            if name not in sessions:
                if name in closed_sessions:
                    err("session %r is closed" % name)
                err("no session %r (start it with 'session %s')" % (name, name))
            if not rest:
                err("'%s' needs an ngctl command" % head)
            try:
                argv = ngctl_words(rest)
            except ValueError as e:
                err(str(e))
            cmdline = " ".join(argv)
            if "\n" in cmdline:
                err("a session command must fit on one line")
            result(Stmt("session-cmd", lineno, line, session=name, cmdline=cmdline))

        elif head is not None and len(rest) >= 1 and rest[0].text in (
                "recv", "recv-from", "silent", "eof") and NAME_RE.match(head):
            name, op = head, rest[0].text
            kind = sockets.get(name)
            if kind is None:
                err("no socket %r (create it with udp or tcp first)" % name)
            if kind == "closed":
                err("socket %r is closed" % name)
            if kind == "tcp-listen":
                err("socket %r is a listening socket: it receives no data" % name)
            try:
                if op == "recv":
                    data = parse_payload(rest[1:])
                    args = ["recv", name, data.hex() or "-", str(RECV_TIMEOUT_MS)]
                elif op == "recv-from":
                    if kind != "udp":
                        err("recv-from is for udp sockets; %r is tcp" % name)
                    if len(rest) < 3:
                        err("want '%s recv-from ADDR:PORT PAYLOAD'" % name)
                    addr, port = parse_addr(rest[1].text)
                    data = parse_payload(rest[2:])
                    args = ["recvfrom", name, addr, str(port), data.hex() or "-",
                            str(RECV_TIMEOUT_MS)]
                elif op == "silent":
                    if len(rest) != 1:
                        err("want '%s silent'" % name)
                    args = ["silent", name, str(SILENT_MS)]
                else:
                    if len(rest) != 1:
                        err("want '%s eof'" % name)
                    if kind != "tcp":
                        err("eof is for tcp streams; %r is udp" % name)
                    args = ["eof", name, str(RECV_TIMEOUT_MS)]
            except ValueError as e:
                err(str(e))
            sc.stmts.append(Stmt("sockexpect", lineno, line, args=args))

        else:
            err("unknown statement %r" % (words[0].text,))

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
        elif k == "sock":
            w("ngs_sock %s" % " ".join(shq(a) for a in st.args))
        elif k == "as":
            w("# credentials for the following commands: %s" % st.who)
        elif k == "wait":
            w("ngs_wait %d" % st.ms)
        elif k == "ok":
            w("ngs_ok")
        elif k == "error":
            w("ngs_error %s %s %s" % (st.errno, shq(st.strerror), shq(strerror_ere(st.strerror))))
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
        if k in RESULT_KINDS and not st.has_status:
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
    with open(path, encoding="utf-8") as f:
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
            with open(gold, encoding="utf-8") as f:
                old = f.read()
        if old != text:
            with open(gold, "w", encoding="utf-8") as f:
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
            with open(os.path.join(args.out_dir, script_name(path)), "w", encoding="utf-8") as f:
                f.write(script)
        else:
            sys.stdout.write(script)
    return status


if __name__ == "__main__":
    sys.exit(main())
