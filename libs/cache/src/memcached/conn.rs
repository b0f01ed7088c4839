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

    /// `get k1 k2 ...`: the values found, with their keys as sent. The keys must be
    /// valid memcached keys.
    pub async fn get_multi(&mut self, keys: &[&str]) -> Result<Vec<(String, Bytes)>, CacheError> {
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
        loop {
            let line = self.read_line().await?;
            if line.as_ref() == b"END" {
                return Ok(found);
            }
            let Some(rest) = line.strip_prefix(b"VALUE ") else {
                return Err(self.unexpected(&line));
            };
            let mut fields = rest.split(|&b| b == b' ');
            let key = fields.next().unwrap_or_default();
            let _flags = fields.next();
            let len = fields
                .next()
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.parse::<usize>().ok());
            let (Ok(key), Some(len)) = (std::str::from_utf8(key), len) else {
                return Err(self.unexpected(&line));
            };
            let key = key.to_string();
            let value = self.read_value(len).await?;
            found.push((key, value));
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
            let line = self.read_line().await?;
            match line.as_ref() {
                b"STORED" => out.stored += 1,
                b"NOT_STORED" => out.refused += 1,
                l if l.starts_with(b"SERVER_ERROR") => {
                    out.refused += 1;
                    out.first_refusal
                        .get_or_insert_with(|| String::from_utf8_lossy(l).into_owned());
                }
                l if l.starts_with(b"CLIENT_ERROR") || l == b"ERROR" => {
                    out.refused += 1;
                    out.poisoned = true;
                    out.first_refusal
                        .get_or_insert_with(|| String::from_utf8_lossy(l).into_owned());
                    // Replies may no longer line up with commands: stop reading.
                    return Ok(out);
                }
                _ => return Err(self.unexpected(&line)),
            }
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

    /// The next reply line, without its `\r\n`.
    async fn read_line(&mut self) -> Result<BytesMut, CacheError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = find_crlf(&self.rbuf[scanned..]) {
                let end = scanned + pos;
                let line = self.rbuf.split_to(end);
                self.rbuf.advance(2);
                return Ok(line);
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

    fn unexpected(&self, line: &[u8]) -> CacheError {
        let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        if line.starts_with(b"SERVER_ERROR") || line.starts_with(b"CLIENT_ERROR") || line == b"ERROR"
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
    buf.windows(2).position(|w| w == b"\r\n")
}

fn io_error(addr: &str, source: std::io::Error) -> CacheError {
    CacheError::Io {
        addr: addr.to_string(),
        source,
    }
}
