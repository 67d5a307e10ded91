//! The x87 80-bit extended format ("long double" on x86-64), as much of it
//! as `INCRBYFLOAT` needs: read a number as glibc's `strtold` does, add two,
//! and print the sum as `printf("%.17Lf")` does.
//!
//! Redis adds in `long double` and clients see the digits that produces:
//! `10.5 + 0.1` is `10.6` there, while `f64` gives `10.59999999999999964`.
//! So the format is emulated exactly: a 64-bit significand, binary exponents
//! down to the subnormals, and round-to-nearest-even at every step, as the
//! FPU and glibc do.

use std::cmp::Ordering;

/// Exponent of the last significand bit of the smallest values, subnormals
/// included (`2^-16445`).
const MIN_EXP: i64 = -16445;
/// Largest exponent of the last significand bit of a finite value.
const MAX_EXP: i64 = 16320;
/// `string2ld` refuses texts this long or longer (its buffer size).
const MAX_TEXT: usize = 5120;

/// A finite extended-precision value: `(-1)^neg * mant * 2^exp`.
///
/// Invariant: `exp` is in `MIN_EXP..=MAX_EXP`; `mant` has its top bit set
/// unless `exp == MIN_EXP` (a subnormal) or the value is zero (`mant == 0`,
/// `exp == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// A number `strtold` accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A finite value.
    Finite(LongDouble),
    /// `inf` or `infinity`, either sign: any sum with it is refused.
    Infinite,
}

impl LongDouble {
    /// Zero, what a missing key counts as.
    pub(crate) const ZERO: LongDouble = LongDouble {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// The sum, rounded once as the FPU rounds it; `None` when it overflows.
    pub(crate) fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        if self.mant == 0 {
            return Some(other);
        }
        if other.mant == 0 {
            return Some(self);
        }
        // A larger exponent means a larger magnitude: only a subnormal lacks
        // the top bit, and it has the smallest exponent of all.
        let (x, y) = if (self.exp, self.mant) >= (other.exp, other.mant) {
            (self, other)
        } else {
            (other, self)
        };
        // 62 guard bits below the significand, and a sticky bit for what is
        // shifted out past them, round exactly like the full sum would.
        let xm = u128::from(x.mant) << 62;
        let ym = u128::from(y.mant) << 62;
        let d = x.exp - y.exp;
        let (ym, sticky) = if d >= 127 {
            (0, true)
        } else {
            (ym >> d, ym & ((1u128 << d) - 1) != 0)
        };
        let e = x.exp - 62;
        if x.neg == y.neg {
            round(x.neg, xm + ym, e, sticky)
        } else {
            // y minus its cut-off part is just below ym: borrow one unit and
            // keep the remainder as sticky. x > y, so this cannot underflow.
            round(x.neg, xm - ym - u128::from(sticky), e, sticky)
        }
    }

    /// The text Redis stores: `%.17Lf` with trailing zeros and a trailing
    /// dot removed, and `-0` written `0`.
    pub(crate) fn to_human(self) -> Vec<u8> {
        let (int_digits, frac) = self.split_decimal();
        let mut out = Vec::with_capacity(int_digits.len() + 20);
        if self.neg {
            out.push(b'-');
        }
        out.extend_from_slice(&int_digits);
        let mut buf = itoa::Buffer::new();
        let frac = buf.format(frac).as_bytes();
        let mut digits = [b'0'; 17];
        digits[17 - frac.len()..].copy_from_slice(frac);
        let kept = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        if kept > 0 {
            out.push(b'.');
            out.extend_from_slice(&digits[..kept]);
        }
        if out == b"-0" {
            out.remove(0);
        }
        out
    }

    /// The integer part's decimal digits and the fraction rounded to 17
    /// decimal places (ties to even), carried into the integer part.
    fn split_decimal(self) -> (Vec<u8>, u64) {
        const SCALE: u64 = 100_000_000_000_000_000;
        if self.exp >= 0 {
            let mut n = Big::from_u64(self.mant);
            n.shl(self.exp as u32);
            return (n.to_decimal(), 0);
        }
        let sh = (-self.exp) as u32;
        let (int, frac) = if sh >= 64 {
            (0, self.mant)
        } else {
            (self.mant >> sh, self.mant & ((1u64 << sh) - 1))
        };
        // frac / 2^sh scaled by 10^17 stays below 2^121.
        let scaled = u128::from(frac) * u128::from(SCALE);
        let mut q = 0u64;
        if sh < 128 {
            let kept = scaled >> sh;
            let rem = scaled & ((1u128 << sh) - 1);
            let half = 1u128 << (sh - 1);
            let up = rem > half || (rem == half && kept & 1 == 1);
            q = (kept + u128::from(up)) as u64;
        }
        let mut int = u128::from(int);
        if q == SCALE {
            q = 0;
            int += 1;
        }
        (int.to_string().into_bytes(), q)
    }
}

/// Reads a number the way Redis's `string2ld` does: `strtold` must take
/// the whole text, with no leading space, and neither overflow nor
/// underflow to zero; `nan` is refused.
pub(crate) fn parse(text: &[u8]) -> Option<Parsed> {
    if text.is_empty() || text.len() >= MAX_TEXT || is_c_space(text[0]) {
        return None;
    }
    let (neg, body) = match text[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Parsed::Infinite);
    }
    let value = match body {
        [b'0', b'x' | b'X', hex @ ..] => parse_hex(neg, hex)?,
        _ => parse_decimal(neg, body)?,
    };
    Some(Parsed::Finite(value))
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// An exponent after `e` or `p`: an optional sign and at least one digit.
/// Saturates far beyond any exponent that matters.
fn parse_exponent(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(1 << 40)
    });
    Some(if neg { -v } else { v })
}

/// `digits[.digits][e[sign]digits]`, at least one digit before the exponent.
fn parse_decimal(neg: bool, text: &[u8]) -> Option<LongDouble> {
    let mant_end = text
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(text.len());
    let exp10 = if mant_end < text.len() {
        parse_exponent(&text[mant_end + 1..])?
    } else {
        0
    };
    // The significant digits and the power of ten that scales them.
    let mut digits: Vec<u8> = Vec::new();
    let mut scale = exp10;
    let mut seen_digit = false;
    let mut seen_dot = false;
    for &b in &text[..mant_end] {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                if seen_dot {
                    scale -= 1;
                }
                if !(digits.is_empty() && b == b'0') {
                    digits.push(b - b'0');
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !seen_digit {
        return None;
    }
    while digits.last() == Some(&0) {
        digits.pop();
        scale += 1;
    }
    if digits.is_empty() {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    let k = digits.len() as i64;
    // Beyond these, the value is past the largest finite long double
    // (~1.19e4932) or below half the smallest subnormal (~3.6e-4951).
    if k - 1 + scale >= 4933 || k + scale <= -4952 {
        return None;
    }
    let d = Big::from_decimal(&digits);
    let (m, e, sticky) = if scale >= 0 {
        let mut n = d;
        n.mul_pow10(scale as u32);
        n.top128()
    } else {
        let mut p = Big::from_u64(1);
        p.mul_pow10((-scale) as u32);
        quotient(d, p)
    };
    round_nonzero(neg, m, e, sticky)
}

/// `hexdigits[.hexdigits][p[sign]digits]` after `0x`: an exact binary
/// significand, so only the bits beyond 124 need a sticky bit.
fn parse_hex(neg: bool, text: &[u8]) -> Option<LongDouble> {
    let mant_end = text
        .iter()
        .position(|&b| b == b'p' || b == b'P')
        .unwrap_or(text.len());
    let mut e = if mant_end < text.len() {
        parse_exponent(&text[mant_end + 1..])?
    } else {
        0
    };
    let (mut m, mut sticky) = (0u128, false);
    let (mut seen_digit, mut seen_dot) = (false, false);
    for &b in &text[..mant_end] {
        if b == b'.' && !seen_dot {
            seen_dot = true;
            continue;
        }
        let d = char::from(b).to_digit(16)?;
        seen_digit = true;
        if m >> 124 == 0 {
            m = m << 4 | u128::from(d);
            if seen_dot {
                e -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_dot {
                e += 4;
            }
        }
    }
    if !seen_digit {
        return None;
    }
    if m == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    round_nonzero(neg, m, e, sticky)
}

/// [`round`] for a nonzero input: `strtold` flags an underflow to zero
/// (or an overflow) as a range error, which Redis refuses.
fn round_nonzero(neg: bool, m: u128, e: i64, sticky: bool) -> Option<LongDouble> {
    round(neg, m, e, sticky).filter(|v| v.mant != 0)
}

/// Rounds `(m + s) * 2^e`, where `0 < s < 1` when `sticky` and `s = 0`
/// otherwise, to the nearest long double, ties to even. `None` on
/// overflow.
fn round(neg: bool, m: u128, e: i64, sticky: bool) -> Option<LongDouble> {
    if m == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    let bits = i64::from(128 - m.leading_zeros());
    // Keep 64 bits, or fewer where the exponent floor makes a subnormal.
    let shift = (bits - 64).max(MIN_EXP - e);
    let mant: u128 = if shift <= 0 {
        m << (-shift)
    } else if shift >= 128 {
        // Everything is cut; only just over half the last unit rounds up.
        u128::from(shift == 128 && (m > 1 << 127 || (m == 1 << 127 && sticky)))
    } else {
        let kept = m >> shift;
        let rem = m & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let up = rem > half || (rem == half && (sticky || kept & 1 == 1));
        kept + u128::from(up)
    };
    let mut exp = e + shift;
    let mut mant = mant;
    if mant == 1 << 64 {
        mant >>= 1;
        exp += 1;
    }
    if mant == 0 {
        return Some(LongDouble {
            neg,
            ..LongDouble::ZERO
        });
    }
    if exp > MAX_EXP {
        return None;
    }
    Some(LongDouble {
        neg,
        mant: mant as u64,
        exp,
    })
}

/// `num / den` as 66 or 67 significant bits, a binary exponent and a
/// sticky bit for a nonzero remainder.
fn quotient(num: Big, den: Big) -> (u128, i64, bool) {
    // Scale so the quotient lands in [2^65, 2^67).
    let s = den.bit_len() as i64 - num.bit_len() as i64 + 66;
    let (mut rem, den) = if s >= 0 {
        let mut n = num;
        n.shl(s as u32);
        (n, den)
    } else {
        let mut d = den;
        d.shl((-s) as u32);
        (num, d)
    };
    let mut q = 0u128;
    for i in (0..68).rev() {
        let mut t = den.clone();
        t.shl(i);
        if rem.cmp(&t) != Ordering::Less {
            rem.sub(&t);
            q |= 1 << i;
        }
    }
    (q, -s, !rem.is_zero())
}

/// An unsigned big integer, little-endian 64-bit limbs, no high zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u64>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v]);
        b.trim();
        b
    }

    /// From decimal digit values (0..=9), most significant first.
    fn from_decimal(digits: &[u8]) -> Big {
        let mut b = Big(Vec::new());
        for chunk in digits.chunks(19) {
            let v = chunk.iter().fold(0u64, |a, &d| a * 10 + u64::from(d));
            b.mul_add(10u64.pow(chunk.len() as u32), v);
        }
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() as u64 * 64 - u64::from(top.leading_zeros()),
        }
    }

    /// `self = self * m + a`.
    fn mul_add(&mut self, m: u64, a: u64) {
        let mut carry = u128::from(a);
        for limb in &mut self.0 {
            let t = u128::from(*limb) * u128::from(m) + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        if carry != 0 {
            self.0.push(carry as u64);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 19 {
            self.mul_add(10u64.pow(19), 0);
            n -= 19;
        }
        self.mul_add(10u64.pow(n), 0);
    }

    fn shl(&mut self, bits: u32) {
        if self.is_zero() {
            return;
        }
        let (limbs, bits) = ((bits / 64) as usize, bits % 64);
        if bits > 0 {
            let mut carry = 0u64;
            for limb in &mut self.0 {
                let next = *limb >> (64 - bits);
                *limb = *limb << bits | carry;
                carry = next;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 {
            let mut moved = vec![0; limbs];
            moved.extend_from_slice(&self.0);
            self.0 = moved;
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`; `other` must not be larger.
    fn sub(&mut self, other: &Big) {
        let mut borrow = false;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let o = other.0.get(i).copied().unwrap_or(0);
            let (v, b1) = limb.overflowing_sub(o);
            let (v, b2) = v.overflowing_sub(u64::from(borrow));
            *limb = v;
            borrow = b1 || b2;
        }
        self.trim();
    }

    /// The top 128 bits, the exponent of their last bit, and whether any
    /// bit below them is set.
    fn top128(&self) -> (u128, i64, bool) {
        let len = self.bit_len();
        let shift = len.saturating_sub(128);
        let bit = |i: u64| self.0[(i / 64) as usize] >> (i % 64) & 1 == 1;
        let m = (shift..len)
            .rev()
            .fold(0u128, |a, i| a << 1 | u128::from(bit(i)));
        let sticky = (0..shift).any(bit);
        (m, shift as i64, sticky)
    }

    /// Decimal digits, most significant first (`0` for zero).
    fn to_decimal(&self) -> Vec<u8> {
        const CHUNK: u64 = 10_000_000_000_000_000_000;
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            let mut rem = 0u128;
            for limb in n.0.iter_mut().rev() {
                let cur = rem << 64 | u128::from(*limb);
                *limb = (cur / u128::from(CHUNK)) as u64;
                rem = cur % u128::from(CHUNK);
            }
            n.trim();
            chunks.push(rem as u64);
        }
        let Some((top, rest)) = chunks.split_last() else {
            return b"0".to_vec();
        };
        let mut out = top.to_string().into_bytes();
        for c in rest.iter().rev() {
            out.extend_from_slice(format!("{c:019}").as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> LongDouble {
        match parse(text.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn sum(a: &str, b: &str) -> String {
        let s = num(a).checked_add(num(b)).expect("finite");
        String::from_utf8(s.to_human()).expect("ascii")
    }

    #[test]
    fn sums_match_redis_on_x86_64() {
        // Pairs and results taken from Redis 7.0 on x86-64.
        for (a, b, want) in [
            ("10.5", "0.1", "10.6"),
            ("3.0e3", "0", "3000"),
            ("0.1", "0.2", "0.3"),
            ("1e20", "0.1", "100000000000000000000"),
            ("0", "123456789.123456789123", "123456789.12345678912242875"),
            ("0", "-1.5", "-1.5"),
            ("0", "0x1p-3", "0.125"),
            ("0", "1e-17", "0.00000000000000001"),
            ("0", "5e-18", "0"),
            ("0", "1.5e-17", "0.00000000000000002"),
            ("0", "2.5e-17", "0.00000000000000002"),
            // An exact tie at the 18th decimal rounds to even.
            ("0", "0.000003814697265625", "0.00000381469726562"),
            ("0", "0.000011444091796875", "0.00001144409179688"),
            ("0", "-0.00000000000000000001", "0"),
            ("0", "0x1.8P+1", "3"),
            ("0", "0x.8", "0.5"),
            ("0", "-.5e1", "-5"),
            ("0", "1e+2", "100"),
            ("0", "00001.50000", "1.5"),
            ("0", "3.6e-4951", "0"),
            ("0x1p-16445", "0", "0"),
            ("-7286.2", "35.91377", "-7250.28623000000000021"),
            ("9", "0.10677433013916015625", "9.10677433013916016"),
            ("0.719", "0xcbe.dp-43", "0.71900000037093884"),
            (
                "3333.7",
                "0x53df2b72.e96bp16",
                "92217971766896.6999969482421875",
            ),
            ("7", "+0x3f8db59f02.7777a68e9p-3299", "7"),
        ] {
            assert_eq!(sum(a, b), want, "{a} + {b}");
        }
    }

    #[test]
    fn huge_values_print_every_digit() {
        let two_max = "359538626972463139991842093548208868096772893888658356970628841530353257046248792709403737216774171128857586838851041378617416726902272110715794556052955234146997955372576789671236326588091188869859074894581254961338834769297758245552436667197907705664206565009503223382416235440319971852753604933726679072768";
        assert_eq!(
            sum("1.7976931348623157e308", "1.7976931348623157e308"),
            two_max
        );
        let big = sum("0", "1e400");
        assert_eq!(big.len(), 401);
        assert!(big.starts_with("10000000000000000000281880683947586514586"));
        assert!(big.ends_with("734806343732497430221946880"));
        assert!(num("1.1e4932").checked_add(num("0")).is_some());
    }

    #[test]
    fn refuses_what_strtold_or_string2ld_refuses() {
        for bad in [
            "", " 1", "1 ", "\t1", "abc", "nan", "NaN", "-nan", "1e", "1e+", ".", "-", "+", "0x",
            "0x1p", "0xg", "1.2.3", "1e5000", "-1e5000", "1.2e4932", "1e-5000", "1e-4952",
            "1\u{0}", "infin", "--1",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse(&[b'1'; MAX_TEXT]), None);
        for inf in ["inf", "-INF", "+Infinity", "infinity"] {
            assert_eq!(parse(inf.as_bytes()), Some(Parsed::Infinite), "{inf}");
        }
        for zero in ["0", "-0", "0e-99999", "0x0p0", "0.000", ".0", "0."] {
            assert_eq!(num(zero).mant, 0, "{zero}");
        }
    }

    #[test]
    fn overflow_is_refused_and_cancellation_is_exact() {
        let max = num("1.1e4932");
        assert_eq!(max.checked_add(max), None);
        assert_eq!(sum("1.1", "-1.1"), "0");
        assert_eq!(sum("-2.5", "1"), "-1.5");
        assert_eq!(sum("1e30", "-1e30"), "0");
        assert_eq!(sum("1", "-1e-30"), "1");
    }
}
