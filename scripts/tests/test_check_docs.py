"""Tests of scripts/check-docs.py on small repositories made for each case.

Document names in these fixtures are assembled from pieces, so that this
file itself cites nothing the checker would look for.
"""

import importlib.util
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "check-docs.py")
_spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
check_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_docs)

MD = ".md"
SECT = "\u00a7"

NODE_DOC = """# A node type

## 1. Identity

### 1.1 Names

## 11. Rows

| Row | Action | Expected | Covered by |
|---|---|---|---|
| K1 | load | works | `scenarios/k.ngs` |
| K2 | unload | EBUSY | `tests/t.rs`, `scenarios/k.ngs` |
| K3 | jail | EPERM | **not covered**: FreeBSD only |
"""


class Fixture:
    """A throwaway git repository holding the given files."""

    def __init__(self, files):
        self.dir = tempfile.mkdtemp(prefix="check-docs-test.")
        for rel, text in files.items():
            p = os.path.join(self.dir, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        subprocess.run(["git", "init", "-q", self.dir], check=True)
        subprocess.run(["git", "-C", self.dir, "add", "-A"], check=True)

    def problems(self):
        repo = check_docs.Repo(self.dir)
        problems = []
        stats = {"citations": 0, "rows": 0, "uncovered": [], "partly": []}
        for rel in repo.files:
            check_docs.check_file(repo, rel, problems, stats)
        for doc in check_docs.CONFORMANCE:
            if doc in repo.fileset:
                check_docs.check_conformance(repo, doc, problems, stats)
        return [(rel, n, what) for rel, n, what in problems], stats

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def good_files():
    ks = "docs/ksocket" + MD
    return {
        ks: NODE_DOC,
        "scenarios/k.ngs": "scenario k\nspec %s:K1 %s:K2 %s:1.1\n" % (ks, ks, ks),
        "tests/t.rs": "//! Unloading (%s %s11, K2).\n//! More (%s1.1).\n" % (ks, SECT, SECT),
        "src/a.rs": "// See %s %s1.1, %s11 and the row %s:K3.\n" % (ks, SECT, SECT, ks),
        "docs/other" + MD: "# Other\n\n## 2. Things\n\nAs in [ksocket%s](ksocket%s) %s1.1;\nhere %s2.\n"
        % (MD, MD, SECT, SECT),
        "tools/x/README" + MD: "# x\n",
        "tools/x/src/lib.rs": "//! See README%s, and https://example.org/notes%s.\n" % (MD, MD),
    }


class CheckDocsTest(unittest.TestCase):
    def run_case(self, change=None, drop=()):
        files = good_files()
        for k in drop:
            del files[k]
        if change:
            files.update(change)
        fx = Fixture(files)
        try:
            return fx.problems()
        finally:
            fx.close()

    def assertProblem(self, problems, rel, fragment):
        self.assertTrue(any(p[0] == rel and fragment in p[2] for p in problems),
                        "no problem %r in %s among %r" % (fragment, rel, problems))

    def test_a_good_repository_passes(self):
        problems, stats = self.run_case()
        self.assertEqual(problems, [])
        self.assertEqual(stats["rows"], 3)
        self.assertEqual(stats["uncovered"], ["K3"])

    def test_document_outside_the_repository(self):
        problems, _ = self.run_case({"src/b.rs": "// as spec" + MD + " says\n"})
        self.assertProblem(problems, "src/b.rs", "not in the repository")

    def test_absolute_path_to_a_document(self):
        path = "/" + "srv/notes/spec" + MD
        problems, _ = self.run_case({"src/b.rs": "// see %s %s3\n" % (path, SECT)})
        self.assertProblem(problems, "src/b.rs", "outside the repository")

    def test_development_machine_path(self):
        problems, _ = self.run_case({"src/b.sh": "# data in /" + "work/team/notes\n"})
        self.assertProblem(problems, "src/b.sh", "development machine")

    def test_relative_path_out_of_the_repository(self):
        up = "../../" + "notes/spec"
        problems, _ = self.run_case({"src/b.sh": "# facts from %s/x\n" % up,
                                     "src/c/d.rs": "// see ../../src/b.sh\n"})
        self.assertProblem(problems, "src/b.sh", "outside the repository")
        self.assertFalse(any(p[0] == "src/c/d.rs" for p in problems), problems)

    def test_missing_section(self):
        problems, _ = self.run_case({"src/b.rs": "// docs/ksocket%s %s7.2\n" % (MD, SECT)})
        self.assertProblem(problems, "src/b.rs", "no such section")

    def test_missing_section_in_a_range(self):
        problems, _ = self.run_case({"src/b.rs": "// docs/ksocket%s %s1–%s9\n" % (MD, SECT, SECT)})
        self.assertProblem(problems, "src/b.rs", SECT + "9")

    def test_missing_section_after_colon(self):
        problems, _ = self.run_case({"s.ngs": "spec docs/ksocket%s:4.4\n" % MD})
        self.assertProblem(problems, "s.ngs", "no such section")

    def test_missing_row(self):
        problems, _ = self.run_case({"s.ngs": "spec docs/ksocket%s:K9\n" % MD})
        self.assertProblem(problems, "s.ngs", "no such row")

    def test_bare_section_binds_to_the_document_above(self):
        text = "//! docs/ksocket%s is the reference.\n\n/// Then %s5.\n" % (MD, SECT)
        problems, _ = self.run_case({"src/b.rs": text})
        self.assertProblem(problems, "src/b.rs", SECT + "5")

    def test_bare_section_without_any_document(self):
        problems, _ = self.run_case({"src/b.rs": "// as %s11 says\n" % SECT})
        self.assertProblem(problems, "src/b.rs", "the file cites none")

    def test_sections_of_other_documents_are_theirs(self):
        text = "// RFC 4291 %s2.2 and ng_ksocket.4 %s9; docs/ksocket%s %s1\n" % (SECT, SECT, MD, SECT)
        problems, _ = self.run_case({"src/b.rs": text})
        self.assertEqual(problems, [])

    def test_markdown_sections_are_its_own(self):
        problems, _ = self.run_case({"docs/other" + MD: "# Other\n\nSee %s4.\n" % SECT})
        self.assertProblem(problems, "docs/other" + MD, SECT + "4")

    def test_row_whose_test_does_not_name_it(self):
        problems, _ = self.run_case({"tests/t.rs": "//! Unloading.\n"})
        self.assertProblem(problems, "docs/ksocket" + MD, "does not mention K2")

    def test_row_naming_a_missing_file(self):
        problems, _ = self.run_case(drop=["scenarios/k.ngs"])
        self.assertProblem(problems, "docs/ksocket" + MD, "scenarios/k.ngs is not in the repository")

    def test_row_without_coverage_or_reason(self):
        doc = NODE_DOC.replace("**not covered**: FreeBSD only", "FreeBSD only")
        problems, _ = self.run_case({"docs/ksocket" + MD: doc})
        self.assertProblem(problems, "docs/ksocket" + MD, "row K3 names no scenario or test")

    def test_untracked_document_does_not_count(self):
        fx = Fixture(good_files())
        try:
            extra = os.path.join(fx.dir, "docs", "new" + MD)
            with open(extra, "w", encoding="utf-8") as f:
                f.write("# New\n")
            with open(os.path.join(fx.dir, "src", "c.rs"), "w", encoding="utf-8") as f:
                f.write("// docs/new%s\n" % MD)
            subprocess.run(["git", "-C", fx.dir, "add", "src/c.rs"], check=True)
            problems, _ = fx.problems()
            self.assertTrue(any("not in the repository" in p[2] for p in problems), problems)
        finally:
            fx.close()

    def test_the_command_exits_1_on_a_problem(self):
        fx = Fixture({"a.rs": "// spec" + MD + "\n"})
        try:
            r = subprocess.run(["python3", SCRIPT, "--root", fx.dir], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("check-docs: a.rs:1:", r.stdout)
        finally:
            fx.close()


if __name__ == "__main__":
    unittest.main()
