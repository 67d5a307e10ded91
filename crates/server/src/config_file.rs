//! `redis.conf`-style files: one `name value...` directive per line, `#`
//! comments, blank lines, and values in double quotes (with `\n`, `\t`,
//! `\xHH`... escapes) or single quotes, split the way Redis splits them.
//!
//! This module turns text into [`Directive`]s; it does not know what any
//! option means ([`crate::options`] does). `include FILE` reads another
//! file in place.

use std::path::{Path, PathBuf};

use crate::options::{Directive, Origin};

/// How deep `include` may nest before it is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// A config file that could not be read or split.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read config file '{path}': {source}")]
    Read {
        /// The file as it was named.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line has unbalanced quotes or is not UTF-8 once unquoted.
    #[error("{path}:{line}: {reason}: >>> {text}")]
    Syntax {
        /// The file as it was named.
        path: PathBuf,
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line as written.
        text: String,
    },
}

/// Reads a config file, following `include` lines, into directives in
/// file order.
pub fn read(path: &Path) -> Result<Vec<Directive>, FileError> {
    let mut out = Vec::new();
    read_into(path, 0, &mut out)?;
    Ok(out)
}

fn read_into(path: &Path, depth: usize, out: &mut Vec<Directive>) -> Result<(), FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for directive in parse(&text, path)? {
        if directive.name != "include" {
            out.push(directive);
            continue;
        }
        let line = match directive.origin {
            Origin::File { line, .. } => line,
            Origin::CommandLine | Origin::Region { .. } => 0,
        };
        let syntax = |reason| FileError::Syntax {
            path: path.to_path_buf(),
            line,
            reason,
            text: format!("include {}", directive.values.join(" ")),
        };
        if directive.values.len() != 1 {
            return Err(syntax("include takes exactly one file"));
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(syntax("include nested too deep (a loop?)"));
        }
        read_into(Path::new(&directive.values[0]), depth + 1, out)?;
    }
    Ok(())
}

/// Splits the text of a config file into directives. `path` only labels
/// their origin.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Directive>, FileError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = |reason| FileError::Syntax {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
            text: raw.to_string(),
        };
        let words = split_line(line).map_err(syntax)?;
        let Some((name, values)) = words.split_first() else {
            continue;
        };
        out.push(Directive {
            name: name.to_ascii_lowercase(),
            values: values.to_vec(),
            origin: Origin::File {
                path: path.to_path_buf(),
                line: index + 1,
            },
        });
    }
    Ok(out)
}

/// Splits one line into words as Redis's `sdssplitargs` does: words are
/// separated by blanks; a double-quoted part takes escapes, a single-quoted
/// part only `\'`; quoted parts join the bare text around them into one
/// word; a closing quote must be followed by a blank or the end.
pub fn split_line(line: &str) -> Result<Vec<String>, &'static str> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(words);
        }
        let mut word = Vec::new();
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            match bytes[i] {
                b'"' => i = double_quoted(bytes, i + 1, &mut word)?,
                b'\'' => i = single_quoted(bytes, i + 1, &mut word)?,
                b => {
                    word.push(b);
                    i += 1;
                }
            }
        }
        words.push(String::from_utf8(word).map_err(|_| "value is not valid UTF-8")?);
    }
}

/// Reads a double-quoted part starting just after its opening quote into
/// `word`; returns the index just after the closing quote.
fn double_quoted(bytes: &[u8], mut i: usize, word: &mut Vec<u8>) -> Result<usize, &'static str> {
    loop {
        match bytes.get(i) {
            None => return Err("unbalanced quotes"),
            Some(b'"') => return after_quote(bytes, i + 1),
            Some(b'\\') if i + 3 < bytes.len() && bytes[i + 1] == b'x' => {
                match (hex(bytes[i + 2]), hex(bytes[i + 3])) {
                    (Some(h), Some(l)) => {
                        word.push(h << 4 | l);
                        i += 4;
                    }
                    _ => {
                        word.push(b'x');
                        i += 2;
                    }
                }
            }
            Some(b'\\') if i + 1 < bytes.len() => {
                word.push(match bytes[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            Some(&b) => {
                word.push(b);
                i += 1;
            }
        }
    }
}

/// Reads a single-quoted part starting just after its opening quote.
fn single_quoted(bytes: &[u8], mut i: usize, word: &mut Vec<u8>) -> Result<usize, &'static str> {
    loop {
        match bytes.get(i) {
            None => return Err("unbalanced quotes"),
            Some(b'\'') => return after_quote(bytes, i + 1),
            Some(b'\\') if bytes.get(i + 1) == Some(&b'\'') => {
                word.push(b'\'');
                i += 2;
            }
            Some(&b) => {
                word.push(b);
                i += 1;
            }
        }
    }
}

/// Redis requires a blank or the end of the line after a closing quote.
fn after_quote(bytes: &[u8], i: usize) -> Result<usize, &'static str> {
    match bytes.get(i) {
        None => Ok(i),
        Some(b) if b.is_ascii_whitespace() => Ok(i),
        Some(_) => Err("closing quote must be followed by a space"),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_line(s).unwrap()
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split("maxmemory 100mb"), ["maxmemory", "100mb"]);
        assert_eq!(split("  save   900 1  "), ["save", "900", "1"]);
        assert_eq!(split(r#"requirepass "a b""#), ["requirepass", "a b"]);
        assert_eq!(split(r#"save """#), ["save", ""]);
        assert_eq!(split(r#"x "\x41\n\"\\""#), ["x", "A\n\"\\"]);
        assert_eq!(split(r"x 'it\'s'"), ["x", "it's"]);
        assert_eq!(split(r#"x ab"c d""#), ["x", "abc d"]);
        assert_eq!(split_line(r#"x "open"#), Err("unbalanced quotes"));
        assert_eq!(
            split_line(r#"x "a"b"#),
            Err("closing quote must be followed by a space")
        );
    }

    #[test]
    fn files_skip_comments_and_keep_lines() {
        let text = "# a comment\n\nport 7000\n  # indented comment\nMaxMemory '1gb'\n";
        let ds = parse(text, Path::new("r.conf")).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[1].name, "maxmemory");
        assert_eq!(ds[1].values, ["1gb"]);
        assert_eq!(ds[1].origin.to_string(), "r.conf:5");
    }

    #[test]
    fn bad_lines_name_their_place() {
        let err = parse("port 1\nbind \"x\n", Path::new("r.conf")).unwrap_err();
        assert!(
            err.to_string().starts_with("r.conf:2: unbalanced quotes"),
            "{err}"
        );
    }
}
