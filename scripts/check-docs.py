#!/usr/bin/env python3
"""Checks that the repository explains itself: every document a file cites
is in the repository, and so is every section and row it cites; no file
points at a path of a development machine; every conformance row of the
node-type documents names the scenario or test that covers it.

    usage: scripts/check-docs.py [--root DIR]

What is checked, in every text file git tracks (or every file under DIR
when it is not a git checkout):

* a citation of a Markdown document (`docs/ksocket.md`, `harness/DESIGN.md`)
  must name a file of the repository, found relative to the citing file's
  directory or to one of its parents up to the top (URLs are not
  citations); an absolute path (`/...`, `~/...`) to a document is refused;
* a section given with it, `docs/ksocket.md §5.3` (also a range `§N–§M`,
  and further `§N` later on the same line), `docs/ksocket.md:5.3`, must be a
  numbered heading of that document (`### 5.3 ...`), and a row,
  `docs/ksocket.md:K29`, a row of one of its tables (`| K29 | ...`);
* a `§N` on a line that names no document refers to the document cited
  last above it in the file (to the file itself in a Markdown file); a file
  that uses `§N` must cite some document;
* no path into a development machine's work or home directories appears,
  and no relative path (`../x`) climbs out of the repository from the
  directory of the file that holds it;
* in the documents with conformance rows (CONFORMANCE below), each row's
  last column ("Covered by") names files of the repository in backquotes,
  and each of them mentions the row (`K29`), unless the cell says "not
  covered" (then it must say why, and the files it names must exist).

Prints one line per problem, `check-docs: FILE:LINE: what`, and exits 1 if
there is any; otherwise one summary line.
"""

import os
import re
import subprocess
import sys

# Documents whose tables hold conformance rows with a "Covered by" column.
CONFORMANCE = ("docs/ksocket.md", "docs/socket.md", "docs/netgraph-model.md")

# A Markdown document named in running text: a relative or absolute path
# ending in .md, not part of a URL or of a longer word.
DOC_RE = re.compile(r"(?<![\w./:~-])([~/]?[\w.~-][\w./~-]*\.md)(?![\w-])")
# What may follow a document name: ":5.3", ":K29", ":11:K29" (section, row).
SUFFIX_RE = re.compile(r":(?:(\d+(?:\.\d+)*)(?![\d.]*\w))?(?::?([A-Z]\d+)\b)?")
# A section sign and number, optionally a range (§N–§M, §N–M).
SECT_RE = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[–-]\s*§?\s*(\d+(?:\.\d+)*))?")
# Citations of documents that are not Markdown files: a § after them is theirs.
OTHER_DOC_RE = re.compile(r"\bRFC\s*\d+|\b[A-Za-z][\w-]*\(\d\)|\b[A-Za-z][\w-]*\.[1-9]\b")
# A development machine's work or home directory.
HOST_PATH_RE = re.compile(r"(?<![\w.:/~-])/(?:work|home)/[\w.-]")
# A relative path that starts by going up one or more directories.
UP_PATH_RE = re.compile(r"(?<![\w./~-])(?:\.\./)+[\w.-][\w./-]*")
HEADING_RE = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?(?:\s|$)")
ROW_RE = re.compile(r"^\|\s*([A-Z]\d+)\s*\|")
BACKQUOTED_RE = re.compile(r"`([^`\s]+)`")


class Repo:
    """The files of the repository and what the documents among them hold."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.files = self._list()
        self.fileset = set(self.files)
        self._docs = {}

    def _list(self):
        try:
            out = subprocess.run(
                ["git", "-C", self.root, "ls-files", "-z"],
                check=True, capture_output=True).stdout
            files = [f for f in out.decode().split("\0") if f]
            if files:
                return sorted(f for f in files if os.path.isfile(os.path.join(self.root, f)))
        except (OSError, subprocess.CalledProcessError):
            pass
        files = []
        for d, dirs, names in os.walk(self.root):
            dirs[:] = [x for x in dirs if x not in (".git", "target", "build")]
            for n in names:
                files.append(os.path.relpath(os.path.join(d, n), self.root))
        return sorted(files)

    def text(self, rel):
        try:
            with open(os.path.join(self.root, rel), "rb") as f:
                data = f.read()
        except OSError:
            return None
        if b"\0" in data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def resolve(self, citing, path):
        """The repository file `path` names when `citing` cites it, or None."""
        d = os.path.dirname(citing)
        while True:
            cand = os.path.normpath(os.path.join(d, path))
            if cand in self.fileset:
                return cand
            if not d:
                return None
            d = os.path.dirname(d)

    def doc(self, rel):
        """(sections, rows) of a Markdown document of the repository."""
        if rel not in self._docs:
            sections, rows = set(), {}
            for n, line in enumerate((self.text(rel) or "").splitlines(), 1):
                m = HEADING_RE.match(line)
                if m:
                    sections.add(m.group(1))
                m = ROW_RE.match(line)
                if m:
                    rows.setdefault(m.group(1), n)
            self._docs[rel] = (sections, rows)
        return self._docs[rel]


def cited_docs(repo, rel, line, problems, n):
    """The document citations of one line: (start, end, resolved or None)."""
    out = []
    for m in DOC_RE.finditer(line):
        path = m.group(1)
        if path.startswith(("/", "~")):
            problems.append((rel, n, "cites %s, a path outside the repository" % path))
            out.append((m.start(), m.end(), None))
            continue
        target = repo.resolve(rel, path)
        if target is None:
            problems.append((rel, n, "cites %s, which is not in the repository" % path))
        out.append((m.start(), m.end(), target))
    return out


def check_section(repo, rel, n, doc, sect, problems):
    if doc is None:
        return
    sections, _ = repo.doc(doc)
    if sect not in sections:
        problems.append((rel, n, "cites %s §%s, which has no such section" % (doc, sect)))


def check_row(repo, rel, n, doc, row, problems):
    if doc is None:
        return
    _, rows = repo.doc(doc)
    if row not in rows:
        problems.append((rel, n, "cites %s row %s, which has no such row" % (doc, row)))


def sections_in(text):
    for m in SECT_RE.finditer(text):
        yield m.group(1)
        if m.group(2):
            yield m.group(2)


def check_file(repo, rel, problems, stats):
    text = repo.text(rel)
    if text is None:
        return
    is_md = rel.endswith(".md")
    file_docs = []          # documents cited anywhere in the file
    last_doc = rel if is_md else None
    bare = []               # (line, section) of § with no document on the line
    for n, line in enumerate(text.splitlines(), 1):
        if HOST_PATH_RE.search(line):
            problems.append((rel, n, "names a path of a development machine: %s"
                             % HOST_PATH_RE.search(line).group(0)))
        for m in UP_PATH_RE.finditer(line):
            up = os.path.normpath(os.path.join(os.path.dirname(rel), m.group(0)))
            if up == ".." or up.startswith("../"):
                problems.append((rel, n, "names %s, a path outside the repository"
                                 % m.group(0)))
        docs = cited_docs(repo, rel, line, problems, n)
        stats["citations"] += len(docs)
        # Boundaries: each document citation, and citations of other documents.
        marks = [(s, e, d) for s, e, d in docs]
        marks += [(m.start(), m.end(), False) for m in OTHER_DOC_RE.finditer(line)]
        marks.sort(key=lambda x: (x[0], x[1]))
        prefix_end = marks[0][0] if marks else len(line)
        before = line[:prefix_end]
        if "§" in before:
            bare.append((n, list(sections_in(before)), last_doc))
        for i, (s, e, d) in enumerate(marks):
            seg_end = marks[i + 1][0] if i + 1 < len(marks) else len(line)
            if d is False:
                continue        # another kind of document: its sections are its own
            if d is not None:
                file_docs.append(d)
            m = SUFFIX_RE.match(line, e)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    check_section(repo, rel, n, d, m.group(1), problems)
                if m.group(2):
                    check_row(repo, rel, n, d, m.group(2), problems)
            for sect in sections_in(line[e:seg_end]):
                check_section(repo, rel, n, d, sect, problems)
        real = [d for _, _, d in docs if d]
        if real:
            last_doc = real[-1]
    for n, sects, doc in bare:
        if not sects:
            continue
        if doc is None:
            if not file_docs:
                problems.append((rel, n, "cites §%s without naming a document, and the "
                                 "file cites none" % sects[0]))
                continue
            doc = file_docs[0]
        for sect in sects:
            if is_md:
                # Its own section, or one of the document named just before.
                if sect in repo.doc(rel)[0] or (doc != rel and sect in repo.doc(doc)[0]):
                    continue
                check_section(repo, rel, n, rel, sect, problems)
            else:
                check_section(repo, rel, n, doc, sect, problems)


def table_cells(line):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return cells


def check_conformance(repo, doc, problems, stats):
    text = repo.text(doc)
    if text is None:
        problems.append((doc, 0, "conformance document missing"))
        return
    header = None
    seen = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            header = None
            continue
        cells = table_cells(line)
        if header is None:
            header = cells
            continue
        m = ROW_RE.match(line)
        if not m or "Covered by" not in header:
            continue
        row = m.group(1)
        stats["rows"] += 1
        if row in seen:
            problems.append((doc, n, "row %s again (first on line %d)" % (row, seen[row])))
        seen[row] = n
        cell = cells[-1] if len(cells) == len(header) else ""
        if len(cells) != len(header):
            problems.append((doc, n, "row %s has %d cells, its table %d"
                             % (row, len(cells), len(header))))
        uncovered = "not covered" in cell.lower()
        named = 0
        for p in BACKQUOTED_RE.findall(cell):
            p = p.rstrip("/")
            if "/" not in p:
                continue
            full = os.path.join(repo.root, p)
            if p in repo.fileset:
                named += 1
                body = repo.text(p) or ""
                if not uncovered and not re.search(r"\b%s\b" % re.escape(row), body):
                    problems.append((doc, n, "row %s: %s does not mention %s" % (row, p, row)))
            elif os.path.isdir(full):
                continue
            else:
                problems.append((doc, n, "row %s: %s is not in the repository" % (row, p)))
        if named == 0 and not uncovered:
            problems.append((doc, n, "row %s names no scenario or test; say \"not covered\" "
                             "and why" % row))
        if cell.lower().startswith("partly"):
            stats["partly"].append(row)
        elif uncovered:
            stats["uncovered"].append(row)


def main(argv):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if len(argv) == 3 and argv[1] == "--root":
        root = argv[2]
    elif len(argv) != 1:
        print("usage: scripts/check-docs.py [--root DIR]", file=sys.stderr)
        return 2
    repo = Repo(root)
    problems = []
    stats = {"citations": 0, "rows": 0, "uncovered": [], "partly": []}
    for rel in repo.files:
        check_file(repo, rel, problems, stats)
    for doc in CONFORMANCE:
        if doc in repo.fileset:
            check_conformance(repo, doc, problems, stats)
    for rel, n, what in problems:
        print("check-docs: %s:%d: %s" % (rel, n, what))
    if problems:
        print("check-docs: %d problem(s)" % len(problems))
        return 1
    print("check-docs: %d files, %d document citations, %d conformance rows "
          "(partly covered: %s; not covered: %s)" % (
              len(repo.files), stats["citations"], stats["rows"],
              " ".join(stats["partly"]) or "none", " ".join(stats["uncovered"]) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
