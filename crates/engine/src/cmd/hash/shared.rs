//! What the hash and set families (and the sorted-set one) share: the
//! `*RAND*` count rules, distinct random sampling and the `*SCAN` replies
//! (cursor and options are [`crate::cmd::scan`]'s, re-exported here).

use rand::Rng;
use resp::Out;

use crate::cmd::parse_i64;
use crate::error::CmdError;

pub(crate) use crate::cmd::scan::{parse_cursor, ScanOpts};

/// Writes a scan reply's head: `[cursor, [` followed by `n` elements.
pub(crate) fn scan_head(out: &mut Out, cursor: u64, n: usize) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(n);
}

/// The empty scan a missing key answers.
pub(crate) fn empty_scan(out: &mut Out) {
    scan_head(out, 0, 0);
}

/// Most elements a negative `*RAND*` count may ask for. Redis has no
/// bound and runs out of memory building such a reply (7.0.15 dies on
/// `HRANDFIELD key -9223372036854775807`); Meridian refuses instead.
pub(crate) const MAX_REPEATS: u64 = 1 << 24;

/// A `*RAND*` count: how many, and whether repeats are allowed (a negative
/// count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RandCount {
    /// The magnitude.
    pub n: u64,
    /// True for a negative count: `n` independent picks.
    pub repeat: bool,
}

impl RandCount {
    /// Reads a count as Redis does: an integer in ±(2^63-1), anything else
    /// `not an integer`, `-2^63` out of range with Redis's message.
    pub(crate) fn parse(arg: &[u8]) -> Result<RandCount, CmdError> {
        let v = parse_i64(arg).ok_or(CmdError::NotInteger)?;
        if v == i64::MIN {
            return Err(CmdError::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        Ok(RandCount {
            n: v.unsigned_abs(),
            repeat: v < 0,
        })
    }

    /// Refuses a repeating count past [`MAX_REPEATS`] (checked only once
    /// there is something to pick from, as a missing key answers empty).
    pub(crate) fn check_repeats(self) -> Result<(), CmdError> {
        if self.repeat && self.n > MAX_REPEATS {
            return Err(CmdError::err("value is out of range"));
        }
        Ok(())
    }
}

/// `k` distinct indexes below `n` (`k <= n`), in random order.
pub(crate) fn sample_distinct(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    rand::seq::index::sample(rng, n, k.min(n)).into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn cursors_read_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+7"), Ok(7));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b"x",
            b"1a",
            b"-",
            b" 1",
            b"1.0",
        ] {
            assert_eq!(
                parse_cursor(bad),
                Err(CmdError::err("invalid cursor")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rand_counts() {
        assert_eq!(
            RandCount::parse(b"-3"),
            Ok(RandCount { n: 3, repeat: true })
        );
        assert_eq!(
            RandCount::parse(b"9223372036854775807"),
            Ok(RandCount {
                n: i64::MAX as u64,
                repeat: false
            })
        );
        assert_eq!(RandCount::parse(b"x"), Err(CmdError::NotInteger));
        assert!(RandCount::parse(b"-9223372036854775808").is_err());
        assert!(RandCount::parse(b"-16777216")
            .unwrap()
            .check_repeats()
            .is_ok());
        assert!(RandCount::parse(b"-16777217")
            .unwrap()
            .check_repeats()
            .is_err());
        assert!(RandCount::parse(b"16777217")
            .unwrap()
            .check_repeats()
            .is_ok());
    }

    #[test]
    fn samples_are_distinct() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for (n, k) in [(10, 10), (10, 3), (1000, 999), (1000, 5), (5, 0)] {
            let mut s = sample_distinct(&mut rng, n, k);
            assert_eq!(s.len(), k);
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), k);
            assert!(s.iter().all(|&i| i < n));
        }
    }
}
