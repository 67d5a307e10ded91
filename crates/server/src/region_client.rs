//! A tiny blocking RESP client for the commands that talk to every region
//! of a datastore (`meridian lag`, `promote`, `status`, `backup create`):
//! one request per connection, `AUTH` first when the region file sets
//! `requirepass`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::region::RegionConfig;

/// Per-request network timeout.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The longest text reply [`command`] accepts.
const TEXT_LIMIT: usize = 1 << 20;
/// The longest bulk reply [`bulk`] accepts: Redis's default
/// `proto-max-bulk-len` (512 MiB), the largest snapshot one reply carries.
pub(crate) const BULK_LIMIT: usize = 512 << 20;
/// Per-read timeout of [`bulk`]: a large snapshot is copied under the
/// engine lock before its first byte is sent.
pub(crate) const BULK_TIMEOUT: Duration = Duration::from_secs(60);

/// One request to a region's client port (with `AUTH` when its file sets
/// `requirepass`); the reply as text, an error reply as an error.
pub(crate) fn command(region: &RegionConfig, args: &[&str]) -> io::Result<String> {
    let mut reader = request(region, args, TIMEOUT)?;
    let body = reply(&mut reader, TEXT_LIMIT)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// One request whose reply is a bulk string of up to `limit` bytes, kept
/// as bytes (`MERIDIAN SNAPSHOT`); each read may take up to `timeout`.
pub(crate) fn bulk(
    region: &RegionConfig,
    args: &[&str],
    limit: usize,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let mut reader = request(region, args, timeout)?;
    reply(&mut reader, limit)
}

/// Connects, authenticates and sends `args`; returns the reader the reply
/// comes on.
fn request(
    region: &RegionConfig,
    args: &[&str],
    timeout: Duration,
) -> io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&region.client, TIMEOUT)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    if let Some(pass) = region.option("requirepass").filter(|p| !p.is_empty()) {
        send(&mut writer, &["AUTH", &pass])?;
        reply(&mut reader, TEXT_LIMIT)?;
    }
    send(&mut writer, args)?;
    Ok(reader)
}

fn send(w: &mut impl Write, args: &[&str]) -> io::Result<()> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    w.write_all(&out)
}

/// One reply: a simple string, integer or bulk string as its bytes; an
/// error reply as an error; a bulk string longer than `limit` is refused.
fn reply(r: &mut BufReader<impl Read>, limit: usize) -> io::Result<Vec<u8>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end();
    match line.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.as_bytes().to_vec()),
        Some(("-", rest)) => Err(bad(rest.to_owned())),
        Some(("$", len)) => {
            let len: usize = len.parse().map_err(|_| bad("bad bulk length".into()))?;
            if len > limit {
                return Err(bad(format!(
                    "reply of {len} bytes is longer than the {limit} accepted"
                )));
            }
            let mut body = vec![0; len + 2];
            r.read_exact(&mut body)?;
            if body[len..] != *b"\r\n" {
                return Err(bad("bulk reply not ended by CRLF".into()));
            }
            body.truncate(len);
            Ok(body)
        }
        _ => Err(bad(format!("unexpected reply {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let mut r = BufReader::new(&b"$5\r\nhello\r\n+OK\r\n:42\r\n-ERR no\r\n"[..]);
        assert_eq!(reply(&mut r, 5).unwrap(), b"hello");
        assert_eq!(reply(&mut r, 5).unwrap(), b"OK");
        assert_eq!(reply(&mut r, 5).unwrap(), b"42");
        assert!(reply(&mut r, 5).is_err());
    }

    #[test]
    fn bulk_replies_are_bytes_within_the_limit() {
        let mut r = BufReader::new(&b"$4\r\n\x00\xff\r\n\r\n$5\r\nhello\r\n"[..]);
        assert_eq!(reply(&mut r, 4).unwrap(), b"\x00\xff\r\n");
        let e = reply(&mut r, 4).unwrap_err();
        assert!(e.to_string().contains("longer than the 4"), "{e}");
    }
}
