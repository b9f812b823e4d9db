//! Output-line patterns (docs/scenarios.md, "Expectations").
//!
//! A pattern is matched against a whole output line. `*` matches any run of
//! characters (also an empty one), `{id}` matches a node ID in ngctl's hex
//! form (`[0-9a-f]+`). Everything else is literal, except that a tab in the
//! output (ngctl prints `Args:\t...`) is matched by a tab or by any run of
//! blanks in the pattern. Because scenario lines are trimmed, leading and
//! trailing blanks of the output line are ignored too.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    Id,
    /// A run of blanks/tabs in the pattern.
    Ws(String),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    src: String,
    toks: Vec<Tok>,
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Pattern {
    /// Compiles `src` (already trimmed by the scenario parser).
    pub fn new(src: &str) -> Pattern {
        let src = src.trim_matches(is_ws);
        let chars: Vec<char> = src.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '*' {
                // Adjacent stars are one star.
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
                i += 1;
            } else if c == '{' && chars[i..].starts_with(&['{', 'i', 'd', '}']) {
                toks.push(Tok::Id);
                i += 4;
            } else if is_ws(c) {
                let mut w = String::new();
                while i < chars.len() && is_ws(chars[i]) {
                    w.push(chars[i]);
                    i += 1;
                }
                toks.push(Tok::Ws(w));
            } else {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
        Pattern {
            src: src.to_string(),
            toks,
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// Does `line` match (as a whole, leading/trailing blanks ignored)?
    pub fn matches(&self, line: &str) -> bool {
        let line: Vec<char> = line
            .trim_matches(|c: char| is_ws(c) || c == '\r' || c == '\n')
            .chars()
            .collect();
        let mut failed = HashSet::new();
        self.m(0, &line, 0, &mut failed)
    }

    fn m(&self, ti: usize, line: &[char], li: usize, failed: &mut HashSet<(usize, usize)>) -> bool {
        if failed.contains(&(ti, li)) {
            return false;
        }
        let ok = self.m1(ti, line, li, failed);
        if !ok {
            failed.insert((ti, li));
        }
        ok
    }

    fn m1(
        &self,
        ti: usize,
        line: &[char],
        li: usize,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        let Some(t) = self.toks.get(ti) else {
            return li == line.len();
        };
        match t {
            Tok::Lit(c) => {
                li < line.len() && line[li] == *c && self.m(ti + 1, line, li + 1, failed)
            }
            Tok::Star => (li..=line.len()).any(|k| self.m(ti + 1, line, k, failed)),
            Tok::Id => {
                let mut k = li;
                while k < line.len() && matches!(line[k], '0'..='9' | 'a'..='f') {
                    k += 1;
                    if self.m(ti + 1, line, k, failed) {
                        return true;
                    }
                }
                false
            }
            Tok::Ws(w) => {
                let wc: Vec<char> = w.chars().collect();
                let mut k = li;
                while k < line.len() && is_ws(line[k]) {
                    k += 1;
                    let run = &line[li..k];
                    if (run == wc.as_slice() || run.contains(&'\t'))
                        && self.m(ti + 1, line, k, failed)
                    {
                        return true;
                    }
                }
                false
            }
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.src)
    }
}

/// Index of the first line at or after `from` that matches `p`.
pub fn find(p: &Pattern, lines: &[String], from: usize) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, l)| p.matches(l))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, l: &str) -> bool {
        Pattern::new(p).matches(l)
    }

    #[test]
    fn literal_and_trim() {
        assert!(m("Num hooks: 1", "  Num hooks: 1  "));
        assert!(!m("Num hooks: 1", "Num hooks: 12"));
        assert!(!m("hooks", "Num hooks"));
    }

    #[test]
    fn star() {
        assert!(m("There are * total nodes:", "There are 3 total nodes:"));
        assert!(m("a*", "a"));
        assert!(m("*", ""));
        assert!(m(
            "x * ngctl* * socket",
            "x               ngctl4242       socket"
        ));
        assert!(!m("a*b", "acd"));
        assert!(m("**a**", "xxa"));
    }

    #[test]
    fn id() {
        assert!(m("from \"[{id}]:\":", "from \"[1f]:\":"));
        assert!(m("ID: {id}   Num", "ID: 0000001f   Num"));
        assert!(!m("[{id}]", "[]"));
        assert!(!m("[{id}]", "[1F]"));
        assert!(!m("[{id}]", "[xyz]"));
        assert!(m("id=0x{id} hooks", "id=0x3 hooks"));
        assert!(m("{i}", "{i}"));
    }

    #[test]
    fn tabs() {
        assert!(m(
            "Args:\tinet/127.0.0.1:7777",
            "Args:\tinet/127.0.0.1:7777"
        ));
        assert!(m("Args: inet/127.0.0.1:7777", "Args:\tinet/127.0.0.1:7777"));
        assert!(m("Args:    inet/1", "Args:\tinet/1"));
        // Blanks are otherwise exact.
        assert!(!m("a b", "a  b"));
        assert!(m("a  b", "a  b"));
        // A pattern tab does not match blanks in the output.
        assert!(!m("a\tb", "a b"));
        // Leading tab in the output is trimmed.
        assert!(m("x", "\tx"));
    }

    #[test]
    fn find_in_order() {
        let lines: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let p = Pattern::new("a");
        assert_eq!(find(&p, &lines, 0), Some(0));
        assert_eq!(find(&p, &lines, 1), Some(2));
        assert_eq!(find(&p, &lines, 3), None);
    }
}
