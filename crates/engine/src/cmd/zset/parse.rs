//! Number and range arguments of the sorted-set commands, read exactly as
//! Redis reads them: C's `strtod` grammar (hex floats, `inf`, leading
//! spaces where Redis lets `strtod` skip them), the range syntax of
//! `ZRANGEBYSCORE` (`(1.5`) and `ZRANGEBYLEX` (`[a`, `(a`, `-`, `+`), and
//! blocking timeouts.

use crate::error::CmdError;
use crate::types::zset::{LexBound, LexRange, ScoreBound, ScoreRange};

/// What C's `strtod` makes of a whole argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Strtod {
    /// The value (NaN for `nan`).
    pub value: f64,
    /// `errno == ERANGE`: a finite text overflowed to ±inf, or a text with
    /// a non-zero digit underflowed to zero.
    pub range_error: bool,
}

/// Parses `s` as C's `strtod` would, requiring the whole of it to be
/// consumed (`None` otherwise). Leading white space is skipped, as
/// `strtod` does; an empty text converts nothing and so reads as 0, fully
/// consumed (Redis's range parser accepts it so).
pub(super) fn strtod(s: &[u8]) -> Option<Strtod> {
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    if start == s.len() {
        // Nothing to convert: `strtod` leaves its end pointer at the very
        // start, which is the end only for an empty text.
        return s.is_empty().then_some(Strtod {
            value: 0.0,
            range_error: false,
        });
    }
    let body = &s[start..];
    let (neg, rest) = match body[0] {
        b'-' => (true, &body[1..]),
        b'+' => (false, &body[1..]),
        _ => (false, body),
    };
    let (magnitude, range_error) = unsigned(rest)?;
    Some(Strtod {
        value: if neg { -magnitude } else { magnitude },
        range_error,
    })
}

/// The unsigned part of a `strtod` number, which must be all of `s`.
fn unsigned(s: &[u8]) -> Option<(f64, bool)> {
    let lower = s.to_ascii_lowercase();
    match lower.as_slice() {
        b"inf" | b"infinity" => return Some((f64::INFINITY, false)),
        b"nan" => return Some((f64::NAN, false)),
        _ if lower.starts_with(b"nan(") && lower.ends_with(b")") => {
            let inner = &lower[4..lower.len() - 1];
            return inner
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .then_some((f64::NAN, false));
        }
        _ => {}
    }
    if lower.starts_with(b"0x") {
        return hex(&lower[2..]);
    }
    decimal(s)
}

/// `digits [. digits] [e [sign] digits]`, at least one mantissa digit.
fn decimal(s: &[u8]) -> Option<(f64, bool)> {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut i = int;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        frac = digits(i + 1);
        i += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(s.get(i + 1), Some(b'+' | b'-')));
        let exp = digits(i + 1 + sign);
        if exp == 0 {
            return None;
        }
        i += 1 + sign + exp;
    }
    if i != s.len() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    let nonzero = s
        .iter()
        .take(int + 1 + frac)
        .any(|c| (b'1'..=b'9').contains(c));
    let range_error = v.is_infinite() || (v == 0.0 && nonzero);
    Some((v, range_error))
}

/// A C99 hex float after its `0x`: `hexdigits [. hexdigits] [p [sign]
/// digits]`, at least one mantissa digit. The first 15 significant digits
/// are kept (60 bits, past a double's 53).
fn hex(s: &[u8]) -> Option<(f64, bool)> {
    let mut mant: u64 = 0;
    let (mut exp, mut i, mut seen, mut point, mut kept) = (0i64, 0, false, false, 0);
    let mut nonzero = false;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !point {
            point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            seen = true;
            nonzero |= d != 0;
            if mant == 0 && d == 0 {
                // Leading zeros carry no precision.
                if point {
                    exp -= 4;
                }
            } else if kept < 15 {
                mant = mant << 4 | u64::from(d);
                kept += 1;
                if point {
                    exp -= 4;
                }
            } else if !point {
                exp += 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    if matches!(s.get(i), Some(b'p')) {
        let sign = usize::from(matches!(s.get(i + 1), Some(b'+' | b'-')));
        let neg = s.get(i + 1) == Some(&b'-');
        let digits = &s[i + 1 + sign..];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Exponents past any double's range saturate; the result is then
        // inf or 0 anyway.
        let p = digits
            .iter()
            .fold(0i64, |v, &d| (v * 10 + i64::from(d - b'0')).min(1 << 20));
        exp += if neg { -p } else { p };
        i = s.len();
    }
    if i != s.len() {
        return None;
    }
    let v = ldexp(mant as f64, exp);
    let range_error = v.is_infinite() || (v == 0.0 && nonzero);
    Some((v, range_error))
}

/// `x * 2^e` without overflowing or flushing to zero on the way.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// A score or increment as Redis's `getDoubleFromObject` reads it: the
/// whole argument, no leading space, not NaN, no overflow or underflow.
pub(super) fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg[0].is_ascii_whitespace() || arg[0] == 0x0b {
        return None;
    }
    let r = strtod(arg)?;
    (!r.range_error && !r.value.is_nan()).then_some(r.value)
}

/// [`parse_score`] with `ERR value is not a valid float`.
pub(super) fn score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_score(arg).ok_or(CmdError::NotFloat)
}

/// One end of a score range: `(` makes it exclusive; the rest is read by
/// `strtod` with only NaN refused (so ` 1`, `1e400` and even the empty
/// text pass, as in Redis).
fn score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let (exclusive, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let value = strtod(text)?.value;
    (!value.is_nan()).then_some(ScoreBound { value, exclusive })
}

/// A score range, or `ERR min or max is not a float`.
pub(super) fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (score_bound(min), score_bound(max)) {
        (Some(min), Some(max)) => Ok(ScoreRange { min, max }),
        _ => Err(CmdError::err("min or max is not a float")),
    }
}

/// One end of a member range: `-`, `+`, `[x` or `(x`.
fn lex_bound(arg: &[u8]) -> Option<LexBound<'_>> {
    match arg {
        b"-" => Some(LexBound::Min),
        b"+" => Some(LexBound::Max),
        [b'[', rest @ ..] => Some(LexBound::Incl(rest)),
        [b'(', rest @ ..] => Some(LexBound::Excl(rest)),
        _ => None,
    }
}

/// A member range, or `ERR min or max not valid string range item`.
pub(super) fn lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::err("min or max not valid string range item")),
    }
}

/// A blocking timeout in seconds, as milliseconds from now (0: forever),
/// the way Redis 7 reads it: a `long double` with no leading space, times
/// 1000, truncated toward zero by a cast to `long long`. A value past that
/// type's range (`inf`, `1e30`) comes out negative from the cast and is
/// refused as negative; one that would overflow once added to the clock is
/// out of range.
pub(super) fn timeout_arg(arg: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let not_float = || CmdError::err("timeout is not a float or out of range");
    if arg.is_empty() || arg[0].is_ascii_whitespace() || arg[0] == 0x0b {
        return Err(not_float());
    }
    let r = strtod(arg).ok_or_else(not_float)?;
    // A `long double` holds what overflows a double, so only underflow
    // and NaN are refused here.
    if r.value.is_nan() || (r.range_error && r.value == 0.0) {
        return Err(not_float());
    }
    let ms = r.value * 1000.0;
    if ms >= 9_223_372_036_854_775_808.0 || ms <= -1.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let ms = ms.max(0.0) as u64;
    if ms > 0 && ms > i64::MAX as u64 - now_ms {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<f64> {
        strtod(s.as_bytes()).map(|r| r.value)
    }

    #[test]
    fn strtod_grammar() {
        assert_eq!(v("1.5"), Some(1.5));
        assert_eq!(v("  -2"), Some(-2.0));
        assert_eq!(v("+.5"), Some(0.5));
        assert_eq!(v("1."), Some(1.0));
        assert_eq!(v("1e3"), Some(1000.0));
        assert_eq!(v("1E-2"), Some(0.01));
        assert_eq!(v("0x10"), Some(16.0));
        assert_eq!(v("0x1p3"), Some(8.0));
        assert_eq!(v("0X.8"), Some(0.5));
        assert_eq!(v("-0x1.8p1"), Some(-3.0));
        assert_eq!(v("0x1000000000000000000"), Some(2f64.powi(72)));
        assert_eq!(v("INF"), Some(f64::INFINITY));
        assert_eq!(v("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(v("nan").is_some_and(f64::is_nan));
        assert!(v("nan(123)").is_some_and(f64::is_nan));
        assert_eq!(v(""), Some(0.0));
        for bad in [
            "1e", "1e+", "0x", "0x.", ".", "e1", "1 ", " ", "1_0", "infinit", "--1", "0x1p",
        ] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
        assert!(strtod(b"1e400").unwrap().range_error);
        assert!(strtod(b"1e-400").unwrap().range_error);
        assert!(!strtod(b"0e-400").unwrap().range_error);
        assert!(!strtod(b"1e-310").unwrap().range_error);
        assert!(strtod(b"0x1p99999").unwrap().range_error);
    }

    #[test]
    fn scores_read_like_get_double_from_object() {
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        for bad in ["", " 1", "1e400", "1e-400", "nan", "x"] {
            assert_eq!(parse_score(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn ranges() {
        let r = score_range(b"(1", b"+inf").unwrap();
        assert_eq!(
            (r.min.value, r.min.exclusive, r.max.value),
            (1.0, true, f64::INFINITY)
        );
        assert_eq!(score_range(b"", b"(").unwrap().max.value, 0.0);
        assert!(score_range(b" 1", b"1e400").is_ok());
        assert!(score_range(b"nan", b"1").is_err());
        assert!(score_range(b"1", b"(x").is_err());
        let l = lex_range(b"[a", b"(b").unwrap();
        assert_eq!((l.min, l.max), (LexBound::Incl(b"a"), LexBound::Excl(b"b")));
        assert_eq!(lex_range(b"-", b"+").unwrap().max, LexBound::Max);
        for bad in [&b"a"[..], b"", b"+a", b"-x"] {
            assert!(lex_range(bad, b"+").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts() {
        let now = 1_700_000_000_000;
        assert_eq!(timeout_arg(b"0", now), Ok(0));
        assert_eq!(timeout_arg(b"1.5", now), Ok(1500));
        assert_eq!(timeout_arg(b"-0.0001", now), Ok(0));
        assert_eq!(timeout_arg(b"0x10", now), Ok(16_000));
        let negative = Err(CmdError::err("timeout is negative"));
        for t in ["-1", "inf", "-inf", "1e400", "1e30"] {
            assert_eq!(timeout_arg(t.as_bytes(), now), negative, "{t}");
        }
        let not_float = Err(CmdError::err("timeout is not a float or out of range"));
        for t in ["x", "nan", " 1", ""] {
            assert_eq!(timeout_arg(t.as_bytes(), now), not_float, "{t}");
        }
        assert_eq!(
            timeout_arg(b"9223372036854770", now),
            Err(CmdError::err("timeout is out of range"))
        );
    }
}
