//! Splitting an inline command line into arguments, with the quoting rules
//! of Redis's `sdssplitargs`.
//!
//! - Arguments are separated by blanks (C `isspace`).
//! - `"..."` understands `\n \r \t \b \a \\ \"`, `\xHH`, and `\c` for any
//!   other `c`; `'...'` understands only `\'`.
//! - A quote may open in the middle of an argument (`a"b c"` is `ab c`),
//!   but a closing quote must be followed by a blank or the end of line.
//! - The line ends at its first NUL byte, as a C string would.

/// A quote was left open, or a closing quote was followed by a non-blank.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unbalanced;

/// C's `isspace` in the "C" locale. Unlike `u8::is_ascii_whitespace` it
/// includes vertical tab.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Bytes that end an unquoted argument. Vertical tab and form feed are
/// blanks between arguments but not inside one: `sdssplitargs` differs
/// there, and so do we.
fn ends_bare(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` (without its line ending) into arguments: their bytes are
/// appended to `out` and their `(start, end)` ranges in `out` to `spans`.
pub(crate) fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), Unbalanced> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut p = 0;
    loop {
        while line.get(p).is_some_and(|&b| is_blank(b)) {
            p += 1;
        }
        if p == line.len() {
            return Ok(());
        }
        let start = out.len();
        p = read_arg(line, p, out)?;
        spans.push((start, out.len()));
    }
}

/// Reads one argument starting at `p` (a non-blank) and returns the
/// offset where the next blank skip starts.
fn read_arg(line: &[u8], mut p: usize, out: &mut Vec<u8>) -> Result<usize, Unbalanced> {
    while let Some(&b) = line.get(p) {
        match b {
            _ if ends_bare(b) => return Ok(p + 1),
            b'"' => return read_double_quoted(line, p + 1, out),
            b'\'' => return read_single_quoted(line, p + 1, out),
            _ => {
                out.push(b);
                p += 1;
            }
        }
    }
    Ok(p)
}

/// A closing quote at `q` ends the argument, and must be followed by a
/// blank or the end of the line.
fn after_close(line: &[u8], q: usize) -> Result<usize, Unbalanced> {
    match line.get(q + 1) {
        Some(&b) if !is_blank(b) => Err(Unbalanced),
        _ => Ok(q + 1),
    }
}

/// Reads a `"..."` body starting just past the opening quote. Returns the
/// offset just past the closing quote, which also ends the argument.
fn read_double_quoted(line: &[u8], mut p: usize, out: &mut Vec<u8>) -> Result<usize, Unbalanced> {
    loop {
        let rest = line.get(p..).unwrap_or_default();
        if let [b'\\', b'x', h, l, ..] = rest {
            if let (Some(h), Some(l)) = (hex_value(*h), hex_value(*l)) {
                out.push(h * 16 + l);
                p += 4;
                continue;
            }
        }
        match rest {
            [b'\\', c, ..] => {
                out.push(match c {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => *other,
                });
                p += 2;
            }
            [b'"', ..] => return after_close(line, p),
            [b, ..] => {
                out.push(*b);
                p += 1;
            }
            [] => return Err(Unbalanced),
        }
    }
}

/// Reads a `'...'` body starting just past the opening quote.
fn read_single_quoted(line: &[u8], mut p: usize, out: &mut Vec<u8>) -> Result<usize, Unbalanced> {
    loop {
        match line.get(p..).unwrap_or_default() {
            [b'\\', b'\'', ..] => {
                out.push(b'\'');
                p += 2;
            }
            [b'\'', ..] => return after_close(line, p),
            [b, ..] => {
                out.push(*b);
                p += 1;
            }
            [] => return Err(Unbalanced),
        }
    }
}
