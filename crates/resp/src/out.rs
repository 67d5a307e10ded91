//! The reply writer: encodes replies straight into a connection's output
//! buffer, in the protocol version that connection negotiated.
//!
//! Command handlers write through an [`Out`]; they never see a socket. Each
//! method appends one complete RESP value (or, for the aggregate headers,
//! the header of one), so a handler that writes `array(n)` must then write
//! exactly `n` values.

/// The protocol version of a connection, switched by `HELLO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// An output buffer plus the protocol to encode in.
#[derive(Debug, Default)]
pub struct Out {
    buf: Vec<u8>,
    /// The protocol every reply is encoded in.
    pub proto: Proto,
}

impl Out {
    /// An empty buffer that encodes in `proto`.
    pub fn new(proto: Proto) -> Self {
        Out {
            buf: Vec::new(),
            proto,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops the first `n` bytes (they were sent).
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// Forgets everything written, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Cuts the buffer back to `len` bytes: undoes replies written after a
    /// [`Out::len`] mark.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Takes the bytes out, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Shrinks a large idle buffer so one big reply does not pin memory.
    pub fn shrink_if_idle(&mut self, keep: usize) {
        if self.buf.is_empty() && self.buf.capacity() > keep {
            self.buf = Vec::with_capacity(keep);
        }
    }

    /// Appends bytes that are already valid RESP.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn header(&mut self, tag: u8, n: i64) {
        self.buf.push(tag);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string. `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply. `msg` starts with its code, as in
    /// `"ERR syntax error"` or `"WRONGTYPE Operation against ..."`.
    /// CR and LF in `msg` are replaced by spaces, as Redis does.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        self.buf.extend(
            msg.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer.
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    /// A bulk string.
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (as `GET` of a counter replies).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The header of an array of `n` values.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// The header of a map of `n` key/value pairs (a flat array of `2n` in
    /// RESP2).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', 2 * n as i64),
            Proto::Resp3 => self.header(b'%', n as i64),
        }
    }

    /// The header of a set of `n` values (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'~', n as i64),
        }
    }

    /// The header of an out-of-band push of `n` values (an array in RESP2).
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'>', n as i64),
        }
    }

    /// A double: a bulk string in RESP2, `,` in RESP3.
    pub fn double(&mut self, d: f64) {
        let mut tmp = [0u8; 40];
        let text = format_double(d, &mut tmp);
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.buf.push(b',');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean: `:1`/`:0` in RESP2, `#t`/`#f` in RESP3.
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp2 => self.int(b as i64),
            Proto::Resp3 => self
                .buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// A verbatim string with a three-letter format such as `txt` (a bulk
    /// string in RESP2).
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                debug_assert_eq!(format.len(), 3);
                self.header(b'=', (text.len() + 4) as i64);
                self.buf.extend_from_slice(format.as_bytes());
                self.buf.push(b':');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Formats a double the way Redis 7.2 replies with one: integral values
/// below 2^53 without a fraction, `inf`/`-inf`/`nan` spelled out, and
/// otherwise the shortest text that reads back as the same double.
pub fn format_double(d: f64, tmp: &mut [u8; 40]) -> &[u8] {
    let text: &[u8] = if d.is_nan() {
        b"nan"
    } else if d.is_infinite() {
        if d > 0.0 {
            b"inf"
        } else {
            b"-inf"
        }
    } else if d == d.trunc() && d.abs() < 9_007_199_254_740_992.0 {
        let mut b = itoa::Buffer::new();
        let s = b.format(d as i64).as_bytes();
        let n = s.len();
        // Keep the sign of negative zero.
        if d == 0.0 && d.is_sign_negative() {
            tmp[..2].copy_from_slice(b"-0");
            return &tmp[..2];
        }
        tmp[..n].copy_from_slice(s);
        return &tmp[..n];
    } else {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(d).as_bytes();
        let n = s.len();
        tmp[..n].copy_from_slice(s);
        return &tmp[..n];
    };
    let n = text.len();
    tmp[..n].copy_from_slice(text);
    &tmp[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_resp2_and_resp3_forms() {
        let mut o = Out::new(Proto::Resp2);
        o.null();
        o.map(1);
        o.boolean(true);
        o.double(1.5);
        assert_eq!(o.as_bytes(), b"$-1\r\n*2\r\n:1\r\n$3\r\n1.5\r\n");
        let mut o = Out::new(Proto::Resp3);
        o.null();
        o.map(1);
        o.boolean(true);
        o.double(1.5);
        assert_eq!(o.as_bytes(), b"_\r\n%1\r\n#t\r\n,1.5\r\n");
    }

    #[test]
    fn doubles_read_like_redis() {
        let mut t = [0u8; 40];
        assert_eq!(format_double(3.0, &mut t), b"3");
        assert_eq!(format_double(-0.0, &mut t), b"-0");
        assert_eq!(format_double(0.1, &mut t), b"0.1");
        assert_eq!(format_double(f64::INFINITY, &mut t), b"inf");
        assert_eq!(format_double(f64::NEG_INFINITY, &mut t), b"-inf");
    }

    #[test]
    fn errors_lose_line_breaks() {
        let mut o = Out::new(Proto::Resp2);
        o.error("ERR a\r\nb");
        assert_eq!(o.as_bytes(), b"-ERR a  b\r\n");
    }
}
