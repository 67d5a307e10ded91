//! A tiny blocking RESP client for the commands that talk to every region
//! of a datastore (`meridian lag`, `promote`, `status`): one request per
//! connection, `AUTH` first when the region file sets `requirepass`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::region::RegionConfig;

/// Per-request network timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

/// One request to a region's client port (with `AUTH` when its file sets
/// `requirepass`); the reply as text, an error reply as an error.
pub(crate) fn command(region: &RegionConfig, args: &[&str]) -> io::Result<String> {
    let stream = TcpStream::connect_timeout(&region.client, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    if let Some(pass) = region.option("requirepass").filter(|p| !p.is_empty()) {
        send(&mut writer, &["AUTH", &pass])?;
        reply(&mut reader)?;
    }
    send(&mut writer, args)?;
    reply(&mut reader)
}

fn send(w: &mut impl Write, args: &[&str]) -> io::Result<()> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    w.write_all(&out)
}

fn reply(r: &mut BufReader<impl Read>) -> io::Result<String> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end();
    match line.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.to_owned()),
        Some(("-", rest)) => Err(bad(rest.to_owned())),
        Some(("$", len)) => {
            let len: usize = len.parse().map_err(|_| bad("bad bulk length".into()))?;
            if len > 1 << 20 {
                return Err(bad("reply too long".into()));
            }
            let mut body = vec![0; len + 2];
            r.read_exact(&mut body)?;
            body.truncate(len);
            Ok(String::from_utf8_lossy(&body).into_owned())
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
        assert_eq!(reply(&mut r).unwrap(), "hello");
        assert_eq!(reply(&mut r).unwrap(), "OK");
        assert_eq!(reply(&mut r).unwrap(), "42");
        assert!(reply(&mut r).is_err());
    }
}
