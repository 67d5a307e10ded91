//! A whole RESP2/RESP3 value and its decoder, used by clients and tests to
//! read replies.
//!
//! [`Frame::parse`] reads every RESP2 and RESP3 type, including blob errors
//! (`!`, read as [`Frame::Error`]), streamed strings and aggregates
//! (`$?`, `*?`, ...), and attributes (`|`), which are read and dropped so
//! the value they annotate is returned. Nesting deeper than [`MAX_DEPTH`]
//! is an error, so hostile input cannot overflow the stack, and no buffer
//! is sized from an announced count beyond a small cap.

use crate::out::format_double;

/// The deepest nesting of aggregates [`Frame::parse`] accepts.
pub const MAX_DEPTH: usize = 128;

/// Aggregates reserve at most this many elements up front; the rest grow
/// as elements actually arrive.
const PREALLOC_CAP: usize = 64;

/// A decoded RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`. When encoding, the text must not contain CR or LF.
    Simple(String),
    /// `-text`, or a RESP3 `!n` blob error.
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// RESP3 `%n`
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n`
    Set(Vec<Frame>),
    /// RESP3 `,d`
    Double(f64),
    /// RESP3 `#t`/`#f`
    Boolean(bool),
    /// RESP3 `=n` with its format. When encoding, the format must be three
    /// bytes long (`txt`, `mkd`).
    Verbatim(String, Vec<u8>),
    /// RESP3 `(n`
    BigNumber(String),
    /// RESP3 `>n`
    Push(Vec<Frame>),
}

/// A malformed reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid frame: {0}")]
pub struct FrameError(pub String);

/// What a decoding step yields: `Ok(None)` means "need more bytes".
type Step<T> = Result<Option<T>, FrameError>;

/// Unwraps a `Some` or returns `Ok(None)` ("need more bytes") at once.
macro_rules! ready {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

fn err<T>(msg: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError(msg.into()))
}

impl Frame {
    /// Decodes the first value in `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a value,
    /// `Ok(Some((frame, consumed)))` for a whole value made of the first
    /// `consumed` bytes, and `Err` when the bytes are not RESP.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        Decoder { buf }.frame(0, 0)
    }

    /// Appends this value in its RESP3 form. An error containing CR or LF
    /// is written as a `!` blob error so it reads back unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) if s.bytes().any(|b| b == b'\r' || b == b'\n') => {
                blob(out, b'!', s.as_bytes())
            }
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Frame::Bulk(data) => blob(out, b'$', data),
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items),
            Frame::Set(items) => aggregate(out, b'~', items),
            Frame::Push(items) => aggregate(out, b'>', items),
            Frame::Map(pairs) => {
                header(out, b'%', pairs.len());
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Frame::Double(d) => line(out, b',', format_double(*d, &mut [0; 40])),
            Frame::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Verbatim(format, data) => {
                header(out, b'=', format.len() + 1 + data.len());
                out.extend_from_slice(format.as_bytes());
                out.push(b':');
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Frame::BigNumber(n) => line(out, b'(', n.as_bytes()),
        }
    }
}

fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, tag: u8, n: usize) {
    line(out, tag, itoa::Buffer::new().format(n).as_bytes());
}

fn blob(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    header(out, tag, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, tag: u8, items: &[Frame]) {
    header(out, tag, items.len());
    for item in items {
        item.encode(out);
    }
}

/// The announced size of a blob or aggregate.
enum Len {
    /// `-1`: RESP2 null.
    Null,
    /// `?`: a RESP3 streamed value whose end is marked in-band.
    Streamed,
    /// A count of bytes or elements.
    Known(usize),
}

/// A recursive-descent reader over one buffer. Every method takes the
/// offset to read at and returns the offset after what it read.
struct Decoder<'b> {
    buf: &'b [u8],
}

impl<'b> Decoder<'b> {
    fn frame(&self, mut pos: usize, depth: usize) -> Step<(Frame, usize)> {
        if depth > MAX_DEPTH {
            return err(format!("nested deeper than {MAX_DEPTH}"));
        }
        loop {
            let Some(&tag) = self.buf.get(pos) else {
                return Ok(None);
            };
            let (text, next) = ready!(self.line(pos + 1));
            let frame = match tag {
                b'+' => Frame::Simple(lossy(text)),
                b'-' => Frame::Error(lossy(text)),
                b':' => Frame::Integer(int(text)?),
                b'_' if text.is_empty() => Frame::Null,
                b'_' => return err("null with a payload"),
                b',' => Frame::Double(double(text)?),
                b'#' => match text {
                    b"t" => Frame::Boolean(true),
                    b"f" => Frame::Boolean(false),
                    _ => return err("boolean is neither t nor f"),
                },
                b'(' => Frame::BigNumber(big_number(text)?),
                b'$' | b'!' | b'=' => return self.blob(tag, text, next),
                b'*' | b'~' | b'>' => return self.sequence(tag, text, next, depth),
                b'%' => return self.map(text, next, depth),
                b'|' => {
                    // An attribute annotates the value after it; read it
                    // and drop it. Looping (not recursing) keeps a chain
                    // of attributes from using stack.
                    let (_, after) = ready!(self.map(text, next, depth));
                    pos = after;
                    continue;
                }
                other => return err(format!("unexpected type byte 0x{other:02x}")),
            };
            return Ok(Some((frame, next)));
        }
    }

    /// The text from `start` to the next CRLF, and the offset after it.
    fn line(&self, start: usize) -> Step<(&'b [u8], usize)> {
        let rest = self.buf.get(start..).unwrap_or_default();
        let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
            return Ok(None);
        };
        match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&rest[..cr], start + cr + 2))),
            Some(_) => err("CR not followed by LF"),
        }
    }

    /// `n` bytes at `start` followed by CRLF.
    fn body(&self, start: usize, n: usize) -> Step<(&'b [u8], usize)> {
        let rest = self.buf.get(start..).unwrap_or_default();
        if rest.len() < n.saturating_add(2) {
            return Ok(None);
        }
        if &rest[n..n + 2] != b"\r\n" {
            return err("blob not followed by CRLF");
        }
        Ok(Some((&rest[..n], start + n + 2)))
    }

    /// `$` bulk, `!` blob error, `=` verbatim string.
    fn blob(&self, tag: u8, len: &[u8], next: usize) -> Step<(Frame, usize)> {
        let (data, next) = match length(len)? {
            Len::Null if tag == b'$' => return Ok(Some((Frame::Null, next))),
            Len::Null => return err("negative length"),
            Len::Streamed if tag == b'$' => ready!(self.streamed_blob(next)),
            Len::Streamed => return err("only bulk strings can be streamed"),
            Len::Known(n) => {
                let (data, next) = ready!(self.body(next, n));
                (data.to_vec(), next)
            }
        };
        let frame = match tag {
            b'$' => Frame::Bulk(data),
            b'!' => Frame::Error(lossy(&data)),
            _ => match data.get(..4) {
                Some([f0, f1, f2, b':']) => match std::str::from_utf8(&[*f0, *f1, *f2]) {
                    Ok(format) => Frame::Verbatim(format.to_owned(), data[4..].to_vec()),
                    Err(_) => return err("verbatim format is not text"),
                },
                _ => return err("verbatim string without a format"),
            },
        };
        Ok(Some((frame, next)))
    }

    /// The chunks of a `$?` string: `;n` blobs up to `;0`.
    fn streamed_blob(&self, mut pos: usize) -> Step<(Vec<u8>, usize)> {
        let mut data = Vec::new();
        loop {
            let Some(&tag) = self.buf.get(pos) else {
                return Ok(None);
            };
            if tag != b';' {
                return err("streamed string chunk without ';'");
            }
            let (len, next) = ready!(self.line(pos + 1));
            let n = match length(len)? {
                Len::Known(0) => return Ok(Some((data, next))),
                Len::Known(n) => n,
                _ => return err("bad streamed chunk length"),
            };
            let (chunk, next) = ready!(self.body(next, n));
            data.extend_from_slice(chunk);
            pos = next;
        }
    }

    /// True when a streamed aggregate ends at `pos` (`.` CRLF).
    fn at_stream_end(&self, pos: usize) -> Step<bool> {
        if self.buf.get(pos) != Some(&b'.') {
            return Ok(Some(false));
        }
        match ready!(self.line(pos + 1)) {
            (b"", _) => Ok(Some(true)),
            _ => err("stream end with a payload"),
        }
    }

    /// `*` array, `~` set, `>` push.
    fn sequence(&self, tag: u8, len: &[u8], mut pos: usize, depth: usize) -> Step<(Frame, usize)> {
        let (mut items, count) = match length(len)? {
            Len::Null if tag == b'*' => return Ok(Some((Frame::Null, pos))),
            Len::Null => return err("negative length"),
            Len::Streamed => (Vec::new(), None),
            Len::Known(n) => (Vec::with_capacity(n.min(PREALLOC_CAP)), Some(n)),
        };
        loop {
            match count {
                Some(n) if items.len() == n => break,
                None if ready!(self.at_stream_end(pos)) => {
                    pos += 3;
                    break;
                }
                _ => {}
            }
            let (item, next) = ready!(self.frame(pos, depth + 1));
            items.push(item);
            pos = next;
        }
        let frame = match tag {
            b'*' => Frame::Array(items),
            b'~' => Frame::Set(items),
            _ => Frame::Push(items),
        };
        Ok(Some((frame, pos)))
    }

    /// `%` map (and `|` attribute, which has the same shape).
    fn map(&self, len: &[u8], mut pos: usize, depth: usize) -> Step<(Frame, usize)> {
        let (mut pairs, count) = match length(len)? {
            Len::Null => return err("negative length"),
            Len::Streamed => (Vec::new(), None),
            Len::Known(n) => (Vec::with_capacity(n.min(PREALLOC_CAP)), Some(n)),
        };
        loop {
            match count {
                Some(n) if pairs.len() == n => break,
                None if ready!(self.at_stream_end(pos)) => {
                    pos += 3;
                    break;
                }
                _ => {}
            }
            let (key, next) = ready!(self.frame(pos, depth + 1));
            let (value, next) = ready!(self.frame(next, depth + 1));
            pairs.push((key, value));
            pos = next;
        }
        Ok(Some((Frame::Map(pairs), pos)))
    }
}

fn lossy(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

fn int(text: &[u8]) -> Result<i64, FrameError> {
    match std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()) {
        Some(n) => Ok(n),
        None => err("bad integer"),
    }
}

fn length(text: &[u8]) -> Result<Len, FrameError> {
    match text {
        b"?" => Ok(Len::Streamed),
        b"-1" => Ok(Len::Null),
        _ => match int(text)? {
            n if n < 0 => err("negative length"),
            n => match usize::try_from(n) {
                Ok(n) => Ok(Len::Known(n)),
                Err(_) => err("length too large"),
            },
        },
    }
}

fn double(text: &[u8]) -> Result<f64, FrameError> {
    match std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()) {
        Some(d) => Ok(d),
        None => err("bad double"),
    }
}

fn big_number(text: &[u8]) -> Result<String, FrameError> {
    let digits = match text {
        [b'-' | b'+', rest @ ..] => rest,
        _ => text,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return err("bad big number");
    }
    Ok(lossy(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out::{Out, Proto};
    use proptest::prelude::*;

    fn encoded(f: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(&mut out);
        out
    }

    /// Parses `input` whole and checks every strict prefix is incomplete.
    #[track_caller]
    fn parse_all(input: &[u8]) -> Frame {
        for end in 0..input.len() {
            assert_eq!(
                Frame::parse(&input[..end]),
                Ok(None),
                "prefix {end} of {input:?}"
            );
        }
        let (frame, n) = Frame::parse(input).unwrap().unwrap();
        assert_eq!(n, input.len());
        frame
    }

    #[track_caller]
    fn parse_err(input: &[u8]) -> String {
        match Frame::parse(input) {
            Err(FrameError(msg)) => msg,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn resp2_types() {
        assert_eq!(parse_all(b"+OK\r\n"), Frame::Simple("OK".into()));
        assert_eq!(parse_all(b"-ERR bad\r\n"), Frame::Error("ERR bad".into()));
        assert_eq!(parse_all(b":-42\r\n"), Frame::Integer(-42));
        assert_eq!(
            parse_all(b"$5\r\na\r\nb\0\r\n"),
            Frame::Bulk(b"a\r\nb\0".to_vec())
        );
        assert_eq!(parse_all(b"$0\r\n\r\n"), bulk(""));
        assert_eq!(parse_all(b"$-1\r\n"), Frame::Null);
        assert_eq!(parse_all(b"*-1\r\n"), Frame::Null);
        assert_eq!(parse_all(b"*0\r\n"), Frame::Array(vec![]));
        assert_eq!(
            parse_all(b"*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$-1\r\n"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Array(vec![bulk("x")]),
                Frame::Null
            ])
        );
    }

    #[test]
    fn resp3_types() {
        assert_eq!(parse_all(b"_\r\n"), Frame::Null);
        assert_eq!(parse_all(b",1.5\r\n"), Frame::Double(1.5));
        assert_eq!(parse_all(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert_eq!(parse_all(b",inf\r\n"), Frame::Double(f64::INFINITY));
        assert_eq!(parse_all(b",1e3\r\n"), Frame::Double(1000.0));
        assert!(matches!(parse_all(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
        assert_eq!(parse_all(b"#t\r\n"), Frame::Boolean(true));
        assert_eq!(parse_all(b"#f\r\n"), Frame::Boolean(false));
        assert_eq!(
            parse_all(b"(-3492890328409238509324850943850943825024385\r\n"),
            Frame::BigNumber("-3492890328409238509324850943850943825024385".into())
        );
        assert_eq!(
            parse_all(b"=15\r\ntxt:Some string\r\n"),
            Frame::Verbatim("txt".into(), b"Some string".to_vec())
        );
        assert_eq!(
            parse_all(b"!21\r\nSYNTAX invalid syntax\r\n"),
            Frame::Error("SYNTAX invalid syntax".into())
        );
        assert_eq!(
            parse_all(b"%2\r\n+a\r\n:1\r\n+b\r\n_\r\n"),
            Frame::Map(vec![
                (Frame::Simple("a".into()), Frame::Integer(1)),
                (Frame::Simple("b".into()), Frame::Null),
            ])
        );
        assert_eq!(
            parse_all(b"~2\r\n:1\r\n:2\r\n"),
            Frame::Set(vec![Frame::Integer(1), Frame::Integer(2)])
        );
        assert_eq!(
            parse_all(b">2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n"),
            Frame::Push(vec![bulk("message"), bulk("hi")])
        );
    }

    #[test]
    fn attributes_are_skipped() {
        let input = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n";
        assert_eq!(
            parse_all(input),
            Frame::Array(vec![Frame::Integer(2039123), Frame::Integer(9543892)])
        );
        // Inside an aggregate too, and chained.
        assert_eq!(
            parse_all(b"*1\r\n|1\r\n+a\r\n+b\r\n|0\r\n:7\r\n"),
            Frame::Array(vec![Frame::Integer(7)])
        );
    }

    #[test]
    fn streamed_values() {
        assert_eq!(
            parse_all(b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n"),
            bulk("Hello word")
        );
        assert_eq!(
            parse_all(b"*?\r\n:1\r\n*?\r\n.\r\n.\r\n"),
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])])
        );
        assert_eq!(
            parse_all(b"%?\r\n+a\r\n:1\r\n.\r\n"),
            Frame::Map(vec![(Frame::Simple("a".into()), Frame::Integer(1))])
        );
        assert_eq!(
            parse_err(b"$?\r\n:1\r\n"),
            "streamed string chunk without ';'"
        );
        assert_eq!(parse_err(b"!?\r\n"), "only bulk strings can be streamed");
        assert_eq!(parse_err(b"*?\r\n.x\r\n"), "stream end with a payload");
        assert_eq!(parse_err(b".\r\n"), "unexpected type byte 0x2e");
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(parse_err(b"?\r\n"), "unexpected type byte 0x3f");
        assert_eq!(parse_err(b":12a\r\n"), "bad integer");
        assert_eq!(parse_err(b"+OK\rX"), "CR not followed by LF");
        assert_eq!(parse_err(b"$3\r\nfooXY"), "blob not followed by CRLF");
        assert_eq!(parse_err(b"$-2\r\n"), "negative length");
        assert_eq!(parse_err(b"%-1\r\n"), "negative length");
        assert_eq!(parse_err(b"$x\r\n"), "bad integer");
        assert_eq!(parse_err(b"#x\r\n"), "boolean is neither t nor f");
        assert_eq!(parse_err(b"_x\r\n"), "null with a payload");
        assert_eq!(parse_err(b",1.5.2\r\n"), "bad double");
        assert_eq!(parse_err(b"(12a\r\n"), "bad big number");
        assert_eq!(
            parse_err(b"=3\r\ntxt\r\n"),
            "verbatim string without a format"
        );
        assert_eq!(
            parse_err(b"=5\r\n\xff\xfe\xfd:x\r\n"),
            "verbatim format is not text"
        );
        assert_eq!(
            FrameError("bad integer".into()).to_string(),
            "invalid frame: bad integer"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |depth: usize| {
            let mut v = b"*1\r\n".repeat(depth);
            v.extend_from_slice(b":1\r\n");
            v
        };
        assert!(matches!(Frame::parse(&nest(MAX_DEPTH)), Ok(Some(_))));
        assert_eq!(parse_err(&nest(MAX_DEPTH + 1)), "nested deeper than 128");
        // Far deeper than any stack could recurse: still just an error.
        assert_eq!(parse_err(&nest(1_000_000)), "nested deeper than 128");
        assert_eq!(parse_err(&b"%1\r\n".repeat(1000)), "nested deeper than 128");
        // A long chain of attributes does not recurse at all.
        let mut chain = b"|0\r\n".repeat(100_000);
        chain.extend_from_slice(b":1\r\n");
        assert_eq!(parse_all_fast(&chain), Frame::Integer(1));
    }

    fn parse_all_fast(input: &[u8]) -> Frame {
        let (frame, n) = Frame::parse(input).unwrap().unwrap();
        assert_eq!(n, input.len());
        frame
    }

    #[test]
    fn announced_sizes_are_not_trusted() {
        assert_eq!(Frame::parse(b"*4000000000\r\n:1\r\n"), Ok(None));
        assert_eq!(Frame::parse(b"%4000000000\r\n"), Ok(None));
        assert_eq!(Frame::parse(b"$4000000000\r\nabc"), Ok(None));
        assert_eq!(parse_err(b"$18446744073709551615\r\n"), "bad integer");
    }

    #[test]
    fn reads_what_out_writes() {
        for proto in [Proto::Resp2, Proto::Resp3] {
            let mut o = Out::new(proto);
            o.map(1);
            o.bulk(b"k");
            o.double(2.5);
            o.null();
            o.verbatim("txt", b"hi");
            o.boolean(false);
            let mut rest = o.as_bytes();
            let mut frames = Vec::new();
            while let Some((f, n)) = Frame::parse(rest).unwrap() {
                frames.push(f);
                rest = &rest[n..];
            }
            assert!(rest.is_empty());
            let want = match proto {
                Proto::Resp2 => vec![
                    Frame::Array(vec![bulk("k"), bulk("2.5")]),
                    Frame::Null,
                    bulk("hi"),
                    Frame::Integer(0),
                ],
                Proto::Resp3 => vec![
                    Frame::Map(vec![(bulk("k"), Frame::Double(2.5))]),
                    Frame::Null,
                    Frame::Verbatim("txt".into(), b"hi".to_vec()),
                    Frame::Boolean(false),
                ],
            };
            assert_eq!(frames, want);
        }
    }

    #[test]
    fn encodes_resp3() {
        let f = Frame::Array(vec![
            Frame::Null,
            Frame::Double(3.0),
            Frame::Error("a\nb".into()),
            Frame::Verbatim("txt".into(), b"x".to_vec()),
        ]);
        assert_eq!(
            encoded(&f),
            b"*4\r\n_\r\n,3\r\n!3\r\na\nb\r\n=5\r\ntxt:x\r\n"
        );
    }

    fn leaf() -> impl Strategy<Value = Frame> {
        prop_oneof![
            "[^\r\n]{0,12}".prop_map(Frame::Simple),
            any::<String>().prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            prop::collection::vec(any::<u8>(), 0..24).prop_map(Frame::Bulk),
            Just(Frame::Null),
            prop_oneof![
                prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
            ]
            .prop_map(Frame::Double),
            any::<bool>().prop_map(Frame::Boolean),
            ("[a-z]{3}", prop::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(f, d)| Frame::Verbatim(f, d)),
            "-?[0-9]{1,40}".prop_map(Frame::BigNumber),
        ]
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
            ]
        })
    }

    /// Pieces of frames, so random input reaches the deeper paths.
    fn resp_token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(&b"+-:$*_%~,#=(>|!;.?"[..]).prop_map(|b| vec![b]),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"-1".to_vec()),
            Just(b"txt:".to_vec()),
            "[0-9]{1,2}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 1..3),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encode_then_parse_round_trips(frame in frame_strategy(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = encoded(&frame);
            let len = bytes.len();
            prop_assert_eq!(&parse_all(&bytes), &frame);
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(Frame::parse(&bytes), Ok(Some((frame, len))));
        }

        #[test]
        fn resp_like_noise_never_panics(tokens in prop::collection::vec(resp_token(), 0..32)) {
            let input = tokens.concat();
            if let Ok(Some((_, n))) = Frame::parse(&input) {
                prop_assert!(n <= input.len());
            }
        }

        #[test]
        fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, n))) = Frame::parse(&input) {
                prop_assert!(n <= input.len());
            }
        }

        #[test]
        fn mutated_frames_never_panic(frame in frame_strategy(), at in any::<prop::sample::Index>(), byte: u8) {
            let mut bytes = encoded(&frame);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(Some((_, n))) = Frame::parse(&bytes) {
                prop_assert!(n <= bytes.len());
            }
        }
    }
}
