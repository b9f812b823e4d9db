//! Documented deviations: the `deviation PAGE "PHRASE"` statements of the
//! scenarios must quote the DEVIATIONS FROM FREEBSD section of our man page
//! `man/PAGE`. Reference mode (`ngharness run --reference`, FreeBSD's own
//! modules) accepts a difference only at a command so declared, and only
//! if the man page really says so.

use std::path::Path;

/// The text of the `.Sh DEVIATIONS FROM FREEBSD` section of an mdoc page,
/// as words: request names and quotes dropped, blanks collapsed.
pub fn deviations_text(mdoc: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut inside = false;
    let mut found = false;
    for line in mdoc.lines() {
        if let Some(title) = line.strip_prefix(".Sh ") {
            inside = title.trim().starts_with("DEVIATIONS");
            found |= inside;
            continue;
        }
        if !inside || line.starts_with(".\\\"") {
            continue;
        }
        words.extend(line_words(line));
    }
    found.then(|| words.join(" "))
}

/// The words of one mdoc line: on a request line (`.Xx ...`), every token
/// that is a macro name (a capital letter then one or two lower-case
/// letters) is left out; quotes and escapes are dropped.
fn line_words(line: &str) -> Vec<String> {
    let request = line.starts_with('.');
    let body = if request { &line[1..] } else { line };
    let body = body
        .replace("\\(en", "-")
        .replace("\\(em", "-")
        .replace("\\&", "")
        .replace("\\e", "\\")
        .replace('"', "");
    body.split_whitespace()
        .filter(|w| !(request && is_macro(w)))
        .map(str::to_string)
        .collect()
}

fn is_macro(w: &str) -> bool {
    let b = w.as_bytes();
    (2..=3).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..].iter().all(u8::is_ascii_lowercase)
}

/// Normalises a phrase the way [`deviations_text`] normalises the page.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ok if `man_dir/page` has a DEVIATIONS FROM FREEBSD section containing
/// `phrase` (compared word by word, blanks and mdoc markup aside).
pub fn documented(man_dir: &Path, page: &str, phrase: &str) -> Result<(), String> {
    let path = man_dir.join(page);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dev = deviations_text(&text)
        .ok_or_else(|| format!("{} has no DEVIATIONS section", path.display()))?;
    if dev.contains(&normalise(phrase)) {
        Ok(())
    } else {
        Err(format!(
            "{}: its DEVIATIONS section does not say \"{phrase}\"",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = ".Dd x\n.Sh DESCRIPTION\nNot here.\n.Sh DEVIATIONS FROM FREEBSD\nThese inputs,\n.Ic getopt\nwhich FreeBSD refuses with\n.Er EINVAL ,\nare accepted\n.Pq Li \"{ a=1 }\" .\n.Sh SEE ALSO\nelsewhere\n";

    #[test]
    fn the_section_is_read_as_words() {
        let t = deviations_text(PAGE).unwrap();
        assert_eq!(
            t,
            "These inputs, getopt which FreeBSD refuses with EINVAL , are accepted { a=1 } ."
        );
        assert!(deviations_text(".Sh NAME\nx\n").is_none());
    }

    #[test]
    fn phrases_are_found_in_the_section_only() {
        let dir = std::env::temp_dir().join(format!("ngdev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.4"), PAGE).unwrap();
        assert!(documented(&dir, "x.4", "which FreeBSD  refuses with EINVAL").is_ok());
        assert!(documented(&dir, "x.4", "Not here").is_err());
        assert!(documented(&dir, "x.4", "elsewhere").is_err());
        assert!(documented(&dir, "y.4", "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
