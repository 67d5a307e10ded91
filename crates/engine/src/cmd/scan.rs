//! The `*SCAN` commands' shared syntax: the cursor and the options.

use resp::Args;

use crate::cmd::{eq_ic, int_arg};
use crate::error::CmdError;

/// Reads a `*SCAN` cursor as Redis does (C's `strtoul`, base 10): an
/// optional sign then digits, `-` negating modulo 2^64, an empty argument
/// read as 0. Anything else, or a value past 2^64-1, is `invalid cursor`.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("invalid cursor");
    if arg.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let v = digits.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let v = v.ok_or_else(invalid)?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The options of the `*SCAN` commands: `[MATCH pattern] [COUNT count]`
/// and, for `SCAN` only, `[TYPE type]`, each any number of times (the last
/// wins). `NOVALUES` is Redis 7.4's and, as in 7.0, a syntax error.
pub(crate) struct ScanOpts<'a> {
    /// Elements to look at per call (`COUNT`, default 10).
    pub count: usize,
    /// Only elements matching this glob (`MATCH`); `None` for all.
    pub pattern: Option<&'a [u8]>,
    /// Only values of this type (`SCAN ... TYPE`), compared without case.
    pub type_name: Option<&'a [u8]>,
}

impl<'a> ScanOpts<'a> {
    /// Reads the options; Redis reads them only once the key is found to
    /// exist, so a missing key answers an empty scan whatever they are.
    pub(crate) fn parse(opts: Args<'a>) -> Result<Self, CmdError> {
        Self::parse_with(opts, false)
    }

    /// As [`ScanOpts::parse`], accepting `TYPE` when `allow_type` (`SCAN`).
    pub(crate) fn parse_with(opts: Args<'a>, allow_type: bool) -> Result<Self, CmdError> {
        let mut o = ScanOpts {
            count: 10,
            pattern: None,
            type_name: None,
        };
        let mut i = 0;
        while i < opts.len() {
            let (name, Some(val)) = (&opts[i], opts.get(i + 1)) else {
                return Err(CmdError::Syntax);
            };
            if eq_ic(name, "count") {
                let n = int_arg(val)?;
                if n < 1 {
                    return Err(CmdError::Syntax);
                }
                o.count = usize::try_from(n).unwrap_or(usize::MAX);
            } else if eq_ic(name, "match") {
                // `*` matches everything: skip the per-element glob.
                o.pattern = (val != b"*").then_some(val);
            } else if allow_type && eq_ic(name, "type") {
                o.type_name = Some(val);
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
        Ok(o)
    }

    /// True when an element (a key, a hash field, a set member) passes `MATCH`.
    pub(crate) fn wants(&self, elem: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| crate::glob::matches(p, elem, false))
    }
}
