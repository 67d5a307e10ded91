//! Command handlers, one file per family, each with its table rows in a
//! `COMMANDS` slice and its unit tests at the bottom.

pub(crate) mod acl;
pub(crate) mod agg;
pub(crate) mod connection;
pub(crate) mod hash;
pub(crate) mod keys;
pub(crate) mod list;
pub(crate) mod persist;
pub(crate) mod pubsub;
pub(crate) mod scan;
pub(crate) mod server;
pub(crate) mod set;
pub(crate) mod string;
pub(crate) mod tx;
pub(crate) mod zset;

use crate::error::CmdError;
use crate::table::Command;

/// Every family's rows; the table is built from these.
pub(crate) const FAMILIES: &[&[Command]] = &[
    connection::COMMANDS,
    server::COMMANDS,
    persist::COMMANDS,
    string::COMMANDS,
    keys::COMMANDS,
    hash::COMMANDS,
    list::COMMANDS,
    set::COMMANDS,
    zset::COMMANDS,
    pubsub::COMMANDS,
    tx::COMMANDS,
    acl::COMMANDS,
];

/// Parses a signed 64-bit integer the way Redis does (`string2ll`): no
/// spaces, no `+`, no leading zeros, at most 20 characters.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// [`parse_i64`] with Redis's error.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a double the way Redis does for arguments: a finite or
/// infinite number with no surrounding spaces; `nan` is refused.
pub(crate) fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// Writes a `<CMD> HELP` reply: one simple string per line.
pub(crate) fn help(out: &mut resp::Out, lines: &[&str]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

/// Redis's error for a subcommand a container command lacks.
pub(crate) fn unknown_subcommand(sub: &[u8], command: &str) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub(crate) fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn floats_parse_like_redis() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
    }
}
