//! The request parser: multibulk arrays and inline commands.
//!
//! Contract (see the tests):
//! - `parse` returns `Ok(None)` when the buffer holds no complete request
//!   yet, `Ok(Some((args, consumed)))` for one complete request that used
//!   the first `consumed` bytes, and `Err` for a protocol error, after which
//!   the connection must be closed. It never panics and never allocates in
//!   proportion to a length the peer announced but has not sent.
//! - Errors carry Redis's wording, e.g. `Protocol error: invalid bulk length`.

use crate::args::Args;
use crate::inline::split_args;
use crate::num::parse_i64;

/// Redis's limits on requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string accepted (`proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Largest multibulk count accepted (Redis: 1024*1024*1024).
    pub max_multibulk: usize,
    /// Largest inline request line (Redis: 64 KB).
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk: 1024 * 1024 * 1024,
            max_inline: 64 * 1024,
        }
    }
}

/// A malformed request. The message is what Redis replies before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// A reusable parser: keeps its scratch buffers between requests so the
/// steady state allocates nothing.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// The limits applied to every request.
    pub limits: Limits,
    spans: Vec<(usize, usize)>,
    scratch: Vec<u8>,
}

/// How many spans a parser keeps after a huge request: a request of more
/// than [`SHRINK_ABOVE`] arguments grows the span list, and the next parse
/// gives that memory back down to this.
const KEEP_SPANS: usize = 1024;

/// Span capacity past which the next parse shrinks the list (1 MiB).
const SHRINK_ABOVE: usize = 64 * KEEP_SPANS;

/// Which buffer a parsed request's spans point into.
enum Source {
    /// The caller's buffer (multibulk: the arguments are not copied).
    Input,
    /// `RequestParser::scratch` (inline: quotes and escapes were decoded).
    Scratch,
}

impl RequestParser {
    /// A parser that applies `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Parses the first request in `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole request,
    /// `Ok(Some((args, consumed)))` for one request made of the first
    /// `consumed` bytes, and `Err` for a protocol error (reply `-ERR <msg>`
    /// and close). Empty `args` (from `*0`, `*-1` or a blank inline line)
    /// means "nothing to run": skip `consumed` bytes and go on.
    ///
    /// The parser keeps no state between calls other than reusable
    /// buffers, so `buf` may be any buffer; a caller that got `Ok(None)`
    /// appends more bytes and calls again with the whole unconsumed data.
    /// A large bulk argument that is still arriving costs one header walk
    /// per call, not a rescan of its body.
    pub fn parse<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> Result<Option<(Args<'a>, usize)>, ProtocolError> {
        let plain = self.limits.max_inline >= PLAIN_HEADER_MAX;
        self.parse_headers(buf, plain)
    }

    /// Parses up to `max` whole multibulk requests at the start of `buf`
    /// into `window` (which it empties first), each exactly as
    /// [`RequestParser::parse`] would, one after the other; stops early,
    /// leaving the rest for `parse`, at anything else: an inline request,
    /// an incomplete one, a protocol error. Returns how many it holds.
    /// A pipeline's requests are parsed once for both uses: their keys
    /// to prefetch, then their arguments to run.
    pub fn parse_window(&mut self, buf: &[u8], max: usize, window: &mut Window) -> usize {
        window.clear();
        if window.spans.capacity() > SHRINK_ABOVE {
            window.spans.shrink_to(KEEP_SPANS);
        }
        let plain = self.limits.max_inline >= PLAIN_HEADER_MAX;
        let mut at = 0;
        while window.reqs.len() < max && buf.get(at) == Some(&b'*') {
            self.spans.clear();
            let used = match self.parse_multibulk(&buf[at..], plain) {
                Ok(Some((_, used))) => used,
                Ok(None) => {
                    window.incomplete = true;
                    break;
                }
                Err(_) => break,
            };
            window
                .spans
                .extend(self.spans.iter().map(|&(s, e)| (at + s, at + e)));
            at += used;
            window.reqs.push((window.spans.len(), at));
        }
        window.reqs.len()
    }

    /// [`RequestParser::parse`], reading plain headers in one pass when
    /// `plain` (the tests compare it with the general path alone).
    fn parse_headers<'a>(
        &'a mut self,
        buf: &'a [u8],
        plain: bool,
    ) -> Result<Option<(Args<'a>, usize)>, ProtocolError> {
        self.spans.clear();
        if self.spans.capacity() > SHRINK_ABOVE {
            self.spans.shrink_to(KEEP_SPANS);
        }
        let consumed = match buf.first() {
            None => return Ok(None),
            Some(b'*') => self.parse_multibulk(buf, plain)?,
            Some(_) => self.parse_inline(buf)?,
        };
        Ok(consumed.map(|(source, n)| {
            let data: &'a [u8] = match source {
                Source::Input => buf,
                Source::Scratch => &self.scratch,
            };
            (Args::new(data, &self.spans), n)
        }))
    }

    /// Parses `*N\r\n` followed by `N` bulk strings into `self.spans`.
    /// Returns the bytes consumed once the whole request is in `buf`.
    fn parse_multibulk(
        &mut self,
        buf: &[u8],
        plain: bool,
    ) -> Result<Option<(Source, usize)>, ProtocolError> {
        // Plain headers (see `plain_header`) are read in one pass; the
        // general path below decides everything else, errors included.
        let (count, mut pos) = match plain_header(buf).filter(|_| plain) {
            Some((0, at)) => return Ok(Some((Source::Input, at))),
            Some((n, at)) if n <= self.limits.max_multibulk => (n as u64, at),
            _ => {
                let Some((line, pos)) = self.header_line(buf, 0, "too big mbulk count string")?
                else {
                    return Ok(None);
                };
                match parse_i64(&line[1..]) {
                    Some(n) if n <= 0 => return Ok(Some((Source::Input, pos))),
                    Some(n) if n as u64 <= self.limits.max_multibulk as u64 => (n as u64, pos),
                    _ => return Err(perr("invalid multibulk length")),
                }
            }
        };
        for _ in 0..count {
            let rest = &buf[pos..];
            let (len, body) = match plain_header(rest) {
                Some((n, at))
                    if plain && rest.first() == Some(&b'$') && n <= self.limits.max_bulk_len =>
                {
                    (n, pos + at)
                }
                _ => match self.bulk_header(buf, pos)? {
                    Some(read) => read,
                    None => return Ok(None),
                },
            };
            // The whole announced body must be here; its bytes are not
            // looked at. Like Redis, the two bytes after the body are
            // skipped, not checked.
            if buf.len() - body < len.saturating_add(2) {
                return Ok(None);
            }
            let end = body + len;
            self.spans.push((body, end));
            pos = end + 2;
        }
        Ok(Some((Source::Input, pos)))
    }

    /// Reads the `$` header at `start`: the length and where the body
    /// starts, `None` while the line is incomplete.
    fn bulk_header(
        &self,
        buf: &[u8],
        start: usize,
    ) -> Result<Option<(usize, usize)>, ProtocolError> {
        let Some((line, body)) = self.header_line(buf, start, "too big bulk count string")? else {
            return Ok(None);
        };
        // An empty line starts with its CR, which is what Redis names.
        let first = line.first().copied().unwrap_or(b'\r');
        if first != b'$' {
            return Err(perr(&format!("expected '$', got '{}'", first as char)));
        }
        match parse_i64(&line[1..]) {
            Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_len as u64 => {
                Ok(Some((n as usize, body)))
            }
            _ => Err(perr("invalid bulk length")),
        }
    }

    /// Finds the header line that starts at `start` (a `*` or `$` line).
    ///
    /// Returns the line without its CR, and the offset just past the byte
    /// that follows the CR (Redis does not check that it is LF). A line
    /// that runs past `max_inline` bytes without a CR is the error `what`;
    /// the window is fixed so the answer does not depend on how the bytes
    /// were split between reads.
    fn header_line<'b>(
        &self,
        buf: &'b [u8],
        start: usize,
        what: &str,
    ) -> Result<Option<(&'b [u8], usize)>, ProtocolError> {
        let rest = &buf[start..];
        let window = &rest[..rest.len().min(self.limits.max_inline.saturating_add(1))];
        match window.iter().position(|&b| b == b'\r') {
            Some(cr) if cr + 1 < rest.len() => Ok(Some((&rest[..cr], start + cr + 2))),
            Some(_) => Ok(None),
            None if rest.len() > self.limits.max_inline => Err(perr(what)),
            None => Ok(None),
        }
    }

    /// Parses one inline command line into `self.scratch` and `self.spans`.
    /// Returns the bytes consumed once the whole line is in `buf`.
    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<(Source, usize)>, ProtocolError> {
        let window = &buf[..buf.len().min(self.limits.max_inline.saturating_add(1))];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if buf.len() > self.limits.max_inline {
                return Err(perr("too big inline request"));
            }
            return Ok(None);
        };
        let mut line = &buf[..lf];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        self.scratch.clear();
        if split_args(line, &mut self.scratch, &mut self.spans).is_err() {
            return Err(perr("unbalanced quotes in request"));
        }
        Ok(Some((Source::Scratch, lf + 1)))
    }
}

/// Requests parsed ahead by [`RequestParser::parse_window`]: their
/// arguments as spans of the buffer they were parsed from, handed out in
/// order.
#[derive(Debug, Default)]
pub struct Window {
    /// Every request's argument spans, back to back.
    spans: Vec<(usize, usize)>,
    /// Per request: where its spans end, and where it ends in the buffer.
    reqs: Vec<(usize, usize)>,
    /// The next request to hand out.
    next: usize,
    /// The parse stopped at a request not all there yet.
    incomplete: bool,
}

impl Window {
    /// Takes the next request: its index for [`Window::args`] and where
    /// it ends in the buffer; `None` when all were taken.
    pub fn take(&mut self) -> Option<(usize, usize)> {
        let &(_, end) = self.reqs.get(self.next)?;
        self.next += 1;
        Some((self.next - 1, end))
    }

    /// The arguments of request `i` in `buf`, the buffer the window was
    /// parsed from.
    #[must_use]
    pub fn args<'a>(&'a self, i: usize, buf: &'a [u8]) -> Args<'a> {
        let from = i.checked_sub(1).map_or(0, |p| self.reqs[p].0);
        Args::new(buf, &self.spans[from..self.reqs[i].0])
    }

    /// The key (second argument) of each request not yet taken.
    pub fn keys<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        (self.next..self.reqs.len()).filter_map(move |i| self.args(i, buf).get(1))
    }

    /// Forgets every request (before a parse, or because the buffer
    /// changes).
    pub fn clear(&mut self) {
        self.spans.clear();
        self.reqs.clear();
        self.next = 0;
        self.incomplete = false;
    }

    /// True when the parse that filled the window stopped at a request
    /// that is not all there yet: once the window is taken, nothing more
    /// runs until more bytes arrive (no need to parse it again).
    #[must_use]
    pub fn incomplete(&self) -> bool {
        self.incomplete
    }

    /// Requests not yet taken.
    #[must_use]
    pub fn len(&self) -> usize {
        self.reqs.len() - self.next
    }

    /// True when every request was taken.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The longest header line [`plain_header`] reads: a sigil, 18 digits, CR
/// and one byte.
const PLAIN_HEADER_MAX: usize = 21;

/// The number of a plain `*` or `$` header line at the start of `line`
/// (whose first byte, the sigil, is not looked at): 1 to 18 digits with no
/// sign and no leading zero (or a lone `0`), a CR, and one more byte (not
/// checked, as Redis does not). Returns the number and the bytes the line
/// takes. Anything else, or a line not all there yet, is `None`, for the
/// general path to decide: the common case in one pass, with no search
/// for the CR first.
#[inline]
fn plain_header(line: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0u64;
    for (i, &b) in line.iter().enumerate().skip(1) {
        match b {
            b'0'..=b'9' if i < PLAIN_HEADER_MAX - 2 && !(i == 2 && n == 0) => {
                n = n * 10 + u64::from(b - b'0');
            }
            b'\r' if i > 1 && i + 1 < line.len() => return Some((usize::try_from(n).ok()?, i + 2)),
            _ => return None,
        }
    }
    None
}

/// A protocol error with Redis's `Protocol error: ` prefix.
fn perr(msg: &str) -> ProtocolError {
    ProtocolError(format!("Protocol error: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The outcome of one parse, owned so results can be compared.
    type Outcome = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

    fn parse_with(limits: Limits, buf: &[u8]) -> Outcome {
        let mut p = RequestParser::new(limits);
        let r = p.parse(buf).map(|o| o.map(|(a, n)| (a.to_vec(), n)));
        r
    }

    fn parse(buf: &[u8]) -> Outcome {
        parse_with(Limits::default(), buf)
    }

    /// Feeds `buf` one byte at a time, as a socket might, reusing one
    /// parser, and returns the first answer that is not "incomplete".
    fn parse_bytewise(limits: Limits, buf: &[u8]) -> Outcome {
        let mut p = RequestParser::new(limits);
        for end in 1..=buf.len() {
            match p.parse(&buf[..end]) {
                Ok(None) => continue,
                Ok(Some((a, n))) => return Ok(Some((a.to_vec(), n))),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn ok(list: &[&str], consumed: usize) -> Outcome {
        Ok(Some((args(list), consumed)))
    }

    fn fails(msg: &str) -> Outcome {
        Err(ProtocolError(format!("Protocol error: {msg}")))
    }

    fn multibulk(argv: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", argv.len()).into_bytes();
        for a in argv {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn small_limits() -> Limits {
        Limits {
            max_bulk_len: 10,
            max_multibulk: 3,
            max_inline: 16,
        }
    }

    /// Checks the whole-buffer answer, and that byte-at-a-time feeding
    /// reaches the same answer.
    #[track_caller]
    fn check(limits: Limits, input: &[u8], want: Outcome) {
        assert_eq!(parse_with(limits, input), want, "whole: {input:?}");
        assert_eq!(parse_bytewise(limits, input), want, "bytewise: {input:?}");
    }

    #[test]
    fn multibulk_request() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        check(
            Limits::default(),
            input,
            ok(&["SET", "key", "value"], input.len()),
        );
    }

    #[test]
    fn multibulk_args_borrow_the_buffer() {
        let input = b"*1\r\n$4\r\nPING\r\n";
        let mut p = RequestParser::default();
        let (a, _) = p.parse(input).unwrap().unwrap();
        assert_eq!(a[0].as_ptr(), input[8..].as_ptr());
    }

    #[test]
    fn empty_and_negative_counts_are_skipped() {
        check(Limits::default(), b"*0\r\n", ok(&[], 4));
        check(Limits::default(), b"*-1\r\n", ok(&[], 5));
        check(Limits::default(), b"*-10\r\n", ok(&[], 6));
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let input = b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
        for end in 0..input.len() {
            assert_eq!(parse(&input[..end]), Ok(None), "prefix of {end} bytes");
        }
        assert_eq!(parse(input), ok(&["ECHO", ""], input.len()));
    }

    #[test]
    fn invalid_multibulk_length() {
        for input in [&b"*x\r\n"[..], b"*\r\n", b"*+1\r\n", b"*01\r\n", b"*1 \r\n"] {
            check(Limits::default(), input, fails("invalid multibulk length"));
        }
        check(small_limits(), b"*4\r\n", fails("invalid multibulk length"));
        check(
            Limits::default(),
            b"*3000000000\r\n",
            fails("invalid multibulk length"),
        );
    }

    #[test]
    fn invalid_bulk_length() {
        for input in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$\r\n",
            b"*2\r\n$3\r\nGET\r\n$-5\r\n",
            b"*1\r\n$536870913\r\n",
        ] {
            check(Limits::default(), input, fails("invalid bulk length"));
        }
        check(
            small_limits(),
            b"*1\r\n$11\r\n",
            fails("invalid bulk length"),
        );
        check(
            small_limits(),
            b"*1\r\n$10\r\n0123456789\r\n",
            ok(&["0123456789"], 21),
        );
    }

    #[test]
    fn expected_dollar() {
        // The case from Redis's own protocol test suite.
        check(
            Limits::default(),
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            fails("expected '$', got 'f'"),
        );
        check(
            Limits::default(),
            b"*1\r\n:1\r\n",
            fails("expected '$', got ':'"),
        );
        // An empty header line: Redis names the CR it found.
        check(
            Limits::default(),
            b"*2\r\n\r\n",
            fails("expected '$', got '\r'"),
        );
    }

    #[test]
    fn too_big_count_strings() {
        let limits = small_limits();
        let mut input = b"*".to_vec();
        input.extend_from_slice(&[b'1'; 16]);
        check(limits, &input, fails("too big mbulk count string"));
        // Exactly at the limit it is still waiting for its CR.
        check(limits, &input[..16], Ok(None));

        let mut input = b"*1\r\n$".to_vec();
        input.extend_from_slice(&[b'1'; 16]);
        check(limits, &input, fails("too big bulk count string"));

        let mut input = b"*".to_vec();
        input.resize(64 * 1024 + 1, b'1');
        // Whole only: byte-at-a-time would rescan 64 KB per byte.
        assert_eq!(parse(&input), fails("too big mbulk count string"));
        assert_eq!(parse(&input[..64 * 1024]), Ok(None));
    }

    #[test]
    fn too_big_inline_request() {
        let limits = small_limits();
        check(limits, &[b'a'; 17], fails("too big inline request"));
        check(limits, &[b'a'; 16], Ok(None));
        let mut line = vec![b'a'; 16];
        line.push(b'\n');
        check(limits, &line, Ok(Some((vec![vec![b'a'; 16]], 17))));
        // A longer line is refused even when its newline already arrived,
        // so the answer does not depend on how reads were split.
        let mut line = vec![b'a'; 17];
        line.push(b'\n');
        check(limits, &line, fails("too big inline request"));
    }

    #[test]
    fn no_allocation_from_announced_sizes() {
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(b"*1000000000\r\n$3\r\nGET\r\n")
                .unwrap()
                .map(|_| ()),
            None
        );
        assert!(p.spans.capacity() <= KEEP_SPANS);
        assert_eq!(
            p.parse(b"*1\r\n$536870912\r\nabc").unwrap().map(|_| ()),
            None
        );
        assert!(p.spans.capacity() <= KEEP_SPANS);
        assert_eq!(p.scratch.capacity(), 0);
    }

    #[test]
    fn spans_shrink_after_a_huge_request() {
        let argv: Vec<Vec<u8>> = (0..SHRINK_ABOVE + 1).map(|_| b"x".to_vec()).collect();
        let input = multibulk(&argv);
        let mut p = RequestParser::default();
        assert_eq!(
            p.parse(&input).unwrap().map(|(a, _)| a.len()),
            Some(argv.len())
        );
        let _ = p.parse(b"*1\r\n$4\r\nPING\r\n");
        assert!(p.spans.capacity() <= KEEP_SPANS);
    }

    #[test]
    fn binary_safe_bulk() {
        let input = b"*2\r\n$3\r\nSET\r\n$6\r\na\r\n\0b\n\r\n";
        check(
            Limits::default(),
            input,
            Ok(Some((
                vec![b"SET".to_vec(), b"a\r\n\0b\n".to_vec()],
                input.len(),
            ))),
        );
    }

    #[test]
    fn pipelined_requests() {
        let input = b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$3\r\nGE";
        let mut p = RequestParser::default();
        let mut seen = Vec::new();
        let mut rest = &input[..];
        while let Some((a, n)) = p.parse(rest).unwrap() {
            seen.push(a.to_vec());
            rest = &rest[n..];
        }
        assert_eq!(
            seen,
            vec![
                args(&["PING"]),
                args(&["ECHO", "hi"]),
                args(&[]),
                args(&[]),
                args(&["GET", "k"])
            ]
        );
        assert_eq!(rest, b"*1\r\n$3\r\nGE");
    }

    #[test]
    fn trailing_bytes_after_a_bulk_are_not_checked() {
        // Redis skips the two bytes after a body without looking at them.
        check(Limits::default(), b"*1\r\n$4\r\nPINGxx", ok(&["PING"], 14));
        check(Limits::default(), b"*1\rx$4\r\nPING\r\n", ok(&["PING"], 14));
    }

    #[test]
    fn inline_commands() {
        let d = Limits::default();
        check(d, b"PING\r\n", ok(&["PING"], 6));
        check(d, b"PING\n", ok(&["PING"], 5));
        check(
            d,
            b"  set\tkey   value \r\n",
            ok(&["set", "key", "value"], 20),
        );
        check(d, b"\r\n", ok(&[], 2));
        check(d, b"\n", ok(&[], 1));
        check(d, b"   \r\n", ok(&[], 5));
        check(d, b"PING", Ok(None));
        // A CR in the middle separates, like a blank.
        check(d, b"a\rb\n", ok(&["a", "b"], 4));
    }

    #[test]
    fn inline_quoting() {
        let d = Limits::default();
        check(d, b"set \"a b\" 'c d'\n", ok(&["set", "a b", "c d"], 16));
        check(d, b"\"\" ''\n", ok(&["", ""], 6));
        check(
            d,
            b"\"\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n",
            Ok(Some((vec![b"Az\n\r\t\x08\x07\\\"q".to_vec()], 27))),
        );
        // Not two hex digits: the backslash escapes the `x` alone.
        check(d, b"\"\\xZZ\"\n", ok(&["xZZ"], 7));
        check(d, b"'it\\'s' 'a\\nb'\n", ok(&["it's", "a\\nb"], 15));
        // A quote may open mid-argument.
        check(d, b"a\"b c\" d\n", ok(&["ab c", "d"], 9));
        // Vertical tab: a blank between arguments, not inside one.
        check(d, b"\x0ba\x0bb \"c\"\x0bd\n", ok(&["a\x0bb", "c", "d"], 11));
        // The line ends at a NUL, as a C string would.
        check(d, b"get k\0ignored \"\n", ok(&["get", "k"], 16));
    }

    #[test]
    fn inline_unbalanced_quotes() {
        for input in [
            &b"set \"abc\n"[..],
            b"set 'abc\n",
            b"\"foo\"bar\n",
            b"'foo'bar\n",
            b"\"a\\\"\n",
            b"\"ends in backslash\\\n",
        ] {
            check(
                Limits::default(),
                input,
                fails("unbalanced quotes in request"),
            );
        }
    }

    #[test]
    fn error_bytes_become_text() {
        let r = parse(b"*1\r\n\xff\r\n");
        assert_eq!(r, fails("expected '$', got '\u{ff}'"));
    }

    /// What a window of at most `max` requests holds of `input`: their
    /// keys, and where the last ends.
    fn window(input: &[u8], max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut w = Window::default();
        RequestParser::default().parse_window(input, max, &mut w);
        let keys = w.keys(input).map(<[u8]>::to_vec).collect();
        let mut end = 0;
        while let Some((_, e)) = w.take() {
            end = e;
        }
        (keys, end)
    }

    #[test]
    fn a_window_holds_whole_requests_only() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
        let get = b"*2\r\n$3\r\nGET\r\n$2\r\nbb\r\n";
        let ping = b"*1\r\n$4\r\nPING\r\n";
        let whole = [&set[..], get, ping].concat();
        let keys = vec![b"a".to_vec(), b"bb".to_vec()];
        assert_eq!(window(&whole, 8), (keys.clone(), whole.len()));
        // An incomplete request at the end is left for `parse`.
        let mut cut = whole.clone();
        cut.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nc");
        assert_eq!(window(&cut, 8), (keys.clone(), whole.len()));
        // At most `max` requests.
        assert_eq!(window(&whole, 1), (vec![b"a".to_vec()], set.len()));
        assert_eq!(window(&whole, 0), (vec![], 0));
        // It stops at an inline request or a malformed header, without
        // an error: `parse` reports those.
        let mut inline = set.to_vec();
        inline.extend_from_slice(b"GET x\r\n");
        inline.extend_from_slice(get);
        assert_eq!(window(&inline, 8), (vec![b"a".to_vec()], set.len()));
        assert_eq!(window(b"*2\r\n$x\r\nGET\r\n", 8), (vec![], 0));
        assert_eq!(window(b"", 8), (vec![], 0));
        // An empty request is held (with no arguments), as `parse` reads it.
        assert_eq!(window(b"*-1\r\n", 8), (vec![], 5));
    }

    fn argv_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8)
    }

    /// Pieces of requests, so random input reaches the deeper paths that
    /// uniform random bytes almost never do.
    fn resp_token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"*".to_vec()),
            Just(b"$".to_vec()),
            Just(b"\r\n".to_vec()),
            "\\$[0-3]\r\n".prop_map(String::into_bytes),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"-".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"'".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"\\x4".to_vec()),
            "[0-9]{1,3}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 1..4),
        ]
    }

    /// The number text of a header: plain ones and every near miss (a
    /// leading zero, a sign, a space, too many digits, none).
    fn header_number() -> impl Strategy<Value = String> {
        prop_oneof![
            "[1-9][0-9]{0,2}",
            Just("0".to_string()),
            "0[0-9]{1,2}",
            "-[0-9]{1,2}",
            "\\+[0-9]",
            Just(" 3".to_string()),
            Just("3 ".to_string()),
            "[1-9][0-9]{16,18}",
            Just(String::new()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn multibulk_round_trips(argv in argv_strategy(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
            let mut input = multibulk(&argv);
            let len = input.len();
            input.extend_from_slice(&tail);
            let mut p = RequestParser::default();
            let (a, n) = p.parse(&input).unwrap().unwrap();
            prop_assert_eq!(a.to_vec(), argv);
            prop_assert_eq!(n, len);
            for end in 0..len {
                prop_assert_eq!(p.parse(&input[..end]).unwrap().map(|_| ()), None);
            }
        }

        #[test]
        fn a_window_holds_what_the_parser_reads_one_by_one(
            argvs in prop::collection::vec(argv_strategy(), 0..6),
            tail in prop::collection::vec(resp_token(), 0..6),
            max in 0usize..8,
            small: bool,
        ) {
            let mut input: Vec<u8> = argvs.iter().flat_map(|a| multibulk(a)).collect();
            input.extend(tail.concat());
            let limits = if small { small_limits() } else { Limits::default() };
            let mut windowed = RequestParser::new(limits);
            let mut window = Window { spans: vec![(9, 9)], reqs: vec![(1, 1)], next: 1, incomplete: true };
            let held = windowed.parse_window(&input, max, &mut window);
            prop_assert_eq!(held, window.len());
            prop_assert!(held <= max);
            // The same requests, in order, as `parse` gives them...
            let mut one = RequestParser::new(limits);
            let mut at = 0;
            let keys: Vec<Vec<u8>> = window.keys(&input).map(<[u8]>::to_vec).collect();
            let mut want_keys = Vec::new();
            while let Some((i, end)) = window.take() {
                let got = window.args(i, &input).to_vec();
                let (a, n) = one.parse(&input[at..]).unwrap().unwrap();
                let a = a.to_vec();
                if let Some(k) = a.get(1) {
                    want_keys.push(k.clone());
                }
                prop_assert_eq!(got, a);
                at += n;
                prop_assert_eq!(end, at);
            }
            prop_assert_eq!(keys, want_keys);
            prop_assert!(window.is_empty());
            // ...and it stops only where the next is not a whole,
            // well-formed multibulk request (or at `max`), saying so when
            // that one is not all there yet.
            if held < max {
                let next = one.parse(&input[at..]);
                let whole_multibulk = input.get(at) == Some(&b'*') && matches!(next, Ok(Some(_)));
                prop_assert!(!whole_multibulk, "stopped before a whole request at {}", at);
                let cut = input.get(at) == Some(&b'*') && matches!(next, Ok(None));
                prop_assert_eq!(window.incomplete(), cut);
            } else {
                prop_assert!(!window.incomplete());
            }
        }

        #[test]
        fn plain_headers_read_as_the_general_path_reads_them(
            count in header_number(),
            bulks in prop::collection::vec((header_number(), prop::collection::vec(any::<u8>(), 0..12)), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut input = format!("*{count}\r\n").into_bytes();
            for (len, body) in bulks {
                input.extend(format!("${len}\r\n").into_bytes());
                input.extend(body);
                input.extend(b"\r\n");
            }
            let limits = Limits { max_bulk_len: 1 << 20, max_multibulk: 1 << 20, max_inline: 1024 };
            for input in [&input[..], &input[..cut.index(input.len() + 1)]] {
                let mut general = RequestParser::new(limits);
                let want: Outcome = general
                    .parse_headers(input, false)
                    .map(|o| o.map(|(a, n)| (a.to_vec(), n)));
                prop_assert_eq!(parse_with(limits, input), want.clone());
                prop_assert_eq!(parse_bytewise(limits, input), want);
            }
        }

        #[test]
        fn inline_words_round_trip(words in prop::collection::vec("[a-zA-Z0-9_:.-]{1,12}", 0..8), crlf: bool) {
            let mut line = words.join(" ").into_bytes();
            line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            let got = parse(&line);
            let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, Ok(Some((want, line.len()))));
        }

        #[test]
        fn resp_like_noise_never_panics(
            count in prop::option::of(0..4u8),
            tokens in prop::collection::vec(resp_token(), 0..24),
        ) {
            let mut input = count.map_or(Vec::new(), |n| format!("*{n}\r\n").into_bytes());
            input.extend(tokens.concat());
            let limits = small_limits();
            let whole = parse_with(limits, &input);
            prop_assert_eq!(parse_bytewise(limits, &input), whole);
        }

        #[test]
        fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256), star: bool) {
            let mut input = input;
            if star {
                input.insert(0, b'*');
            }
            let limits = small_limits();
            let whole = parse_with(limits, &input);
            if let Ok(Some((_, n))) = &whole {
                prop_assert!(*n <= input.len());
            }
            // Fragmentation never changes the answer.
            prop_assert_eq!(parse_bytewise(limits, &input), whole);
        }
    }
}
