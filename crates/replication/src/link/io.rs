//! Reading length-prefixed [`Msg`]s from a QUIC stream.

use crate::protocol::Msg;

use super::LinkError;

/// The most bytes taken from the stream per read.
const READ_CHUNK: usize = 1 << 20;

/// Reads messages from one receive stream, buffering partial ones.
pub(crate) struct MsgReader {
    stream: quinn::RecvStream,
    buf: Vec<u8>,
    /// Where the next message starts in `buf`.
    pos: usize,
}

impl MsgReader {
    pub(crate) fn new(stream: quinn::RecvStream) -> MsgReader {
        MsgReader {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// A message already buffered, without reading the stream.
    pub(crate) fn try_next(&mut self) -> Result<Option<Msg>, LinkError> {
        let Some((msg, used)) = Msg::decode(&self.buf[self.pos..])? else {
            return Ok(None);
        };
        self.pos += used;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(Some(msg))
    }

    /// The next message, or `None` when the stream ended cleanly between
    /// messages. Cancel-safe: bytes are kept only after a read completed,
    /// before the next await.
    pub(crate) async fn next(&mut self) -> Result<Option<Msg>, LinkError> {
        loop {
            if let Some(msg) = self.try_next()? {
                return Ok(Some(msg));
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            match self.stream.read_chunk(READ_CHUNK, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(LinkError::Truncated),
            }
        }
    }
}
