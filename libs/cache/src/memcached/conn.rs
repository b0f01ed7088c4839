//! One connection speaking memcached's text protocol: multi-key `get` and pipelined
//! `set`. Callers bound every call with a timeout; a call that is cancelled or fails
//! leaves the connection in an unknown state, so it is dropped, never reused.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use crate::CacheError;

/// Longest reply line accepted (`VALUE <250-byte key> <flags> <bytes> <cas>` fits easily).
const MAX_LINE: usize = 2048;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Outcome of a pipelined set: how many items the server stored and refused, and
/// whether the connection may be reused.
#[derive(Debug, Default)]
pub(crate) struct SetOutcome {
    pub stored: u64,
    pub refused: u64,
    /// First refusal, for the log.
    pub first_refusal: Option<String>,
    /// A `CLIENT_ERROR`/`ERROR` reply: the server may not be where we think in the
    /// stream any more, so the connection is not reused.
    pub poisoned: bool,
}

pub(crate) struct Conn {
    addr: String,
    stream: BufWriter<TcpStream>,
    rbuf: BytesMut,
}

impl Conn {
    pub async fn connect(addr: &str) -> Result<Self, CacheError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| io_error(addr, e))?;
        stream.set_nodelay(true).map_err(|e| io_error(addr, e))?;
        Ok(Self {
            addr: addr.to_string(),
            stream: BufWriter::with_capacity(64 * 1024, stream),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// `get k1 k2 ...`: the values found, each with the index of its key in `keys`.
    /// The keys must be valid memcached keys; a key listed twice is answered twice.
    pub async fn get_multi(&mut self, keys: &[&str]) -> Result<Vec<(usize, Bytes)>, CacheError> {
        let mut line = Vec::with_capacity(5 + keys.iter().map(|k| k.len() + 1).sum::<usize>());
        line.extend_from_slice(b"get");
        for k in keys {
            line.push(b' ');
            line.extend_from_slice(k.as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        self.write(&line).await?;
        self.flush().await?;

        let mut found = Vec::with_capacity(keys.len());
        // memcached answers in the order asked: match keys with a cursor, falling back
        // to a search should a server ever reorder.
        let mut cursor = 0;
        loop {
            let n = self.read_line().await?;
            let line = &self.rbuf[..n];
            if line == b"END" {
                self.rbuf.advance(n + 2);
                return Ok(found);
            }
            let Some((key, len)) = parse_value_header(line) else {
                return Err(self.unexpected(n));
            };
            let index = match keys[cursor.min(keys.len())..]
                .iter()
                .position(|k| k.as_bytes() == key)
            {
                Some(i) => Some(cursor + i),
                None => keys.iter().position(|k| k.as_bytes() == key),
            };
            self.rbuf.advance(n + 2);
            let value = self.read_value(len).await?;
            // A key we did not ask for would be a server bug: drop its value.
            if let Some(i) = index {
                found.push((i, value));
                cursor = i + 1;
            }
        }
    }

    /// Pipelined `set`s: all commands written, then one reply read per item.
    pub async fn set_multi(
        &mut self,
        items: &[(&str, &Bytes)],
        ttl_secs: u64,
    ) -> Result<SetOutcome, CacheError> {
        for (key, value) in items {
            let header = format!("set {key} 0 {ttl_secs} {}\r\n", value.len());
            self.write(header.as_bytes()).await?;
            self.write(value).await?;
            self.write(b"\r\n").await?;
        }
        self.flush().await?;

        let mut out = SetOutcome::default();
        for _ in items {
            let n = self.read_line().await?;
            let line = &self.rbuf[..n];
            if line == b"STORED" {
                out.stored += 1;
            } else if line == b"NOT_STORED" {
                out.refused += 1;
            } else if line.starts_with(b"SERVER_ERROR")
                || line.starts_with(b"CLIENT_ERROR")
                || line == b"ERROR"
            {
                out.refused += 1;
                out.first_refusal
                    .get_or_insert_with(|| String::from_utf8_lossy(line).into_owned());
                if !line.starts_with(b"SERVER_ERROR") {
                    // Replies may no longer line up with commands: stop reading, and
                    // do not reuse the connection.
                    out.poisoned = true;
                    return Ok(out);
                }
            } else {
                return Err(self.unexpected(n));
            }
            self.rbuf.advance(n + 2);
        }
        Ok(out)
    }

    async fn write(&mut self, buf: &[u8]) -> Result<(), CacheError> {
        self.stream
            .write_all(buf)
            .await
            .map_err(|e| io_error(&self.addr, e))
    }

    async fn flush(&mut self) -> Result<(), CacheError> {
        self.stream
            .flush()
            .await
            .map_err(|e| io_error(&self.addr, e))
    }

    async fn fill(&mut self) -> Result<(), CacheError> {
        self.rbuf.reserve(READ_CHUNK);
        let n = self
            .stream
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| io_error(&self.addr, e))?;
        if n == 0 {
            return Err(io_error(
                &self.addr,
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    }

    /// Reads until the buffer starts with a whole reply line; returns its length
    /// without the `\r\n` (the caller parses `rbuf[..n]`, then advances past it).
    async fn read_line(&mut self) -> Result<usize, CacheError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = find_crlf(&self.rbuf[scanned..]) {
                return Ok(scanned + pos);
            }
            scanned = self.rbuf.len().saturating_sub(1);
            if self.rbuf.len() > MAX_LINE {
                return Err(CacheError::Protocol {
                    addr: self.addr.clone(),
                    message: format!("reply line longer than {MAX_LINE} bytes"),
                });
            }
            self.fill().await?;
        }
    }

    /// A `len`-byte data block and its `\r\n`. The value gets an allocation of its own
    /// (never a slice of the read buffer), so a cache that keeps it holds exactly `len`
    /// bytes, not the buffer around it.
    async fn read_value(&mut self, len: usize) -> Result<Bytes, CacheError> {
        let value = if self.rbuf.len() >= len {
            let v = Bytes::copy_from_slice(&self.rbuf[..len]);
            self.rbuf.advance(len);
            v
        } else {
            let mut v = BytesMut::with_capacity(len);
            v.extend_from_slice(&self.rbuf);
            self.rbuf.clear();
            while v.len() < len {
                let want = len - v.len();
                let n = self
                    .stream
                    .read_buf(&mut (&mut v).limit(want))
                    .await
                    .map_err(|e| io_error(&self.addr, e))?;
                if n == 0 {
                    return Err(io_error(
                        &self.addr,
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
            }
            v.freeze()
        };
        while self.rbuf.len() < 2 {
            self.fill().await?;
        }
        if &self.rbuf[..2] != b"\r\n" {
            return Err(CacheError::Protocol {
                addr: self.addr.clone(),
                message: "data block not followed by \\r\\n".into(),
            });
        }
        self.rbuf.advance(2);
        Ok(value)
    }

    /// The error for the unexpected reply line `rbuf[..n]`.
    fn unexpected(&self, n: usize) -> CacheError {
        let line = &self.rbuf[..n];
        let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        if line.starts_with(b"SERVER_ERROR")
            || line.starts_with(b"CLIENT_ERROR")
            || line == b"ERROR"
        {
            CacheError::Server {
                addr: self.addr.clone(),
                message: text,
            }
        } else {
            CacheError::Protocol {
                addr: self.addr.clone(),
                message: format!("unexpected reply {text:?}"),
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    // A bare \n inside a line is not an end: keep looking after it.
    if nl > 0 && buf[nl - 1] == b'\r' {
        Some(nl - 1)
    } else {
        find_crlf(&buf[nl + 1..]).map(|p| p + nl + 1)
    }
}

/// `VALUE <key> <flags> <bytes> [<cas>]` → (key, bytes).
fn parse_value_header(line: &[u8]) -> Option<(&[u8], usize)> {
    let rest = line.strip_prefix(b"VALUE ")?;
    let mut fields = rest.split(|&b| b == b' ');
    let key = fields.next()?;
    let _flags = fields.next()?;
    let len = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    Some((key, len))
}

fn io_error(addr: &str, source: std::io::Error) -> CacheError {
    CacheError::Io {
        addr: addr.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    /// A one-connection server that reads one request line and answers `reply` one
    /// byte at a time, so every parser state sees a partial buffer.
    async fn trickle_server(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut s = BufReader::new(s);
            let mut line = String::new();
            s.read_line(&mut line).await.unwrap();
            for b in reply {
                s.get_mut().write_all(&[*b]).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
            // Hold the connection open until the client is done.
            let _ = s.read_line(&mut line).await;
        });
        addr
    }

    #[tokio::test]
    async fn parses_replies_arriving_byte_by_byte_in_any_order() {
        let addr = trickle_server(
            b"VALUE b 0 3\r\nx\r\n\r\nVALUE a 5 2 99\r\nhi\r\nVALUE zz 0 1\r\nq\r\nVALUE a 0 0\r\n\r\nEND\r\n",
        )
        .await;
        let mut c = Conn::connect(&addr).await.unwrap();
        let got = c.get_multi(&["a", "b", "a"]).await.unwrap();
        // "b" came first, "a" (with a CAS field) is matched after it, "zz" was never
        // asked for and is dropped, the second "a" is found by searching from the start.
        assert_eq!(
            got,
            vec![
                (1, Bytes::from_static(b"x\r\n")),
                (2, Bytes::from_static(b"hi")),
                (0, Bytes::new()),
            ]
        );
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_and_refusals_are_server_errors() {
        let addr = trickle_server(b"HELLO\r\n").await;
        let mut c = Conn::connect(&addr).await.unwrap();
        let err = c.get_multi(&["a"]).await.unwrap_err();
        assert!(matches!(err, CacheError::Protocol { .. }), "{err}");
        assert!(
            err.to_string().contains("unexpected reply \"HELLO\""),
            "{err}"
        );

        let addr = trickle_server(b"SERVER_ERROR out of memory\r\n").await;
        let mut c = Conn::connect(&addr).await.unwrap();
        let err = c.get_multi(&["a"]).await.unwrap_err();
        assert!(matches!(err, CacheError::Server { .. }), "{err}");

        let addr = trickle_server(b"VALUE a 0 2\r\nabXY").await;
        let mut c = Conn::connect(&addr).await.unwrap();
        let err = c.get_multi(&["a"]).await.unwrap_err();
        assert!(matches!(err, CacheError::Protocol { .. }), "{err}");
    }

    #[tokio::test]
    async fn pipelined_set_replies_are_counted() {
        let addr =
            trickle_server(b"STORED\r\nSERVER_ERROR object too large for cache\r\nSTORED\r\n")
                .await;
        let mut c = Conn::connect(&addr).await.unwrap();
        let v = Bytes::from_static(b"v");
        let out = c
            .set_multi(&[("a", &v), ("b", &v), ("c", &v)], 60)
            .await
            .unwrap();
        assert_eq!((out.stored, out.refused, out.poisoned), (2, 1, false));
        assert!(out.first_refusal.unwrap().contains("too large"));
    }

    #[test]
    fn line_ends_and_value_headers() {
        assert_eq!(find_crlf(b"END\r\n"), Some(3));
        assert_eq!(find_crlf(b"a\nb\r\n"), Some(3));
        assert_eq!(find_crlf(b"abc\r"), None);
        assert_eq!(parse_value_header(b"VALUE k 0 12"), Some((&b"k"[..], 12)));
        assert_eq!(parse_value_header(b"VALUE k 0 12 7"), Some((&b"k"[..], 12)));
        assert_eq!(parse_value_header(b"VALUE k 0"), None);
        assert_eq!(parse_value_header(b"VALUE k 0 -1"), None);
        assert_eq!(parse_value_header(b"VALUES k 0 1"), None);
    }
}
