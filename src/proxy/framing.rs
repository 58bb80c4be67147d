//! Which request heads on an HTTP/1 connection were ambiguously framed.
//!
//! hyper resolves `Content-Length` + `Transfer-Encoding` by letting the
//! chunked encoding win (RFC 9112 §6.3) and silently drops the length, so
//! the service can no longer tell the request was ambiguous. veer rejects
//! such requests instead, as nginx does, so this scanner follows the bytes
//! of the connection as they are read: request heads (their framing
//! headers and `Content-Length` value) and, between them, bodies (skipped
//! by length, or chunk by chunk), so every pipelined request is checked,
//! not only the first. It numbers heads from 0 in arrival order, the order
//! hyper serves them in, and remembers the first ambiguous one.
//!
//! It looks at head bytes one by one (heads are small), skips body bytes
//! in bulk and never allocates. Once the bytes stop making sense (hyper
//! will reject them and close the connection) it stops.

/// `Content-Length` seen.
const CONTENT_LENGTH: u8 = 1;
/// `Transfer-Encoding` seen.
const TRANSFER_ENCODING: u8 = 2;

const CL: &[u8] = b"content-length:";
const TE: &[u8] = b"transfer-encoding:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a request head (or the blank lines that may precede one).
    Head,
    /// `n` more bytes of a `Content-Length` body.
    Body(u64),
    /// A chunk-size line: the size so far.
    ChunkSize(u64),
    /// The rest of a chunk-size line (extensions, whitespace).
    ChunkExt(u64),
    /// `n` more bytes of chunk data, then its CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk; `true` while the current line
    /// has content.
    Trailers(bool),
    /// Lost (malformed framing, or the connection was upgraded).
    Stop,
}

/// Scans an HTTP/1 connection's request bytes, fed in pieces as reads
/// return.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// The current head line so far, lowercased, up to the longest name.
    line: [u8; TE.len()],
    /// Bytes in the current line (it may be longer than `line`).
    pos: usize,
    /// The current line has content other than `\r`.
    nonempty: bool,
    /// Non-empty lines in the current head (the request line is the first).
    lines: u32,
    /// Framing headers of the current head.
    seen: u8,
    /// The `Content-Length` value of the current head.
    length: Option<u64>,
    /// In a `Content-Length` value; digits seen in it.
    value: bool,
    digits: bool,
    /// Heads completed so far.
    heads: u32,
    /// The first ambiguously framed head's number.
    pub ambiguous: Option<u32>,
}

impl Default for Framing {
    fn default() -> Framing {
        Framing {
            state: State::Head,
            line: [0; TE.len()],
            pos: 0,
            nonempty: false,
            lines: 0,
            seen: 0,
            length: None,
            value: false,
            digits: false,
            heads: 0,
            ambiguous: None,
        }
    }
}

impl Framing {
    /// Stops scanning (the connection was upgraded: the rest is a tunnel).
    pub fn stop(&mut self) {
        self.state = State::Stop;
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Stop => return,
                State::Head => self.head(bytes),
                State::Body(n) => {
                    let take = n.min(bytes.len() as u64);
                    self.state = match n - take {
                        0 => State::Head,
                        left => State::Body(left),
                    };
                    take as usize
                }
                State::ChunkSize(size) => {
                    let b = bytes[0];
                    self.state = match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = (b as char).to_digit(16).unwrap_or(0);
                            match size.checked_mul(16) {
                                Some(s) => State::ChunkSize(s + u64::from(digit)),
                                None => State::Stop,
                            }
                        }
                        b';' | b' ' | b'\t' | b'\r' => State::ChunkExt(size),
                        b'\n' => self.chunk(size),
                        _ => State::Stop,
                    };
                    1
                }
                State::ChunkExt(size) => match memchr::memchr(b'\n', bytes) {
                    Some(at) => {
                        self.state = self.chunk(size);
                        at + 1
                    }
                    None => bytes.len(),
                },
                State::ChunkData(n) => {
                    let take = n.min(bytes.len() as u64);
                    self.state = match n - take {
                        0 => State::ChunkEnd,
                        left => State::ChunkData(left),
                    };
                    take as usize
                }
                State::ChunkEnd => match memchr::memchr(b'\n', bytes) {
                    Some(at) => {
                        self.state = State::ChunkSize(0);
                        at + 1
                    }
                    None => bytes.len(),
                },
                State::Trailers(nonempty) => {
                    let b = bytes[0];
                    self.state = match (b, nonempty) {
                        (b'\n', false) => State::Head,
                        (b'\n', true) => State::Trailers(false),
                        (b'\r', _) => State::Trailers(nonempty),
                        _ => State::Trailers(true),
                    };
                    1
                }
            };
            bytes = &bytes[used..];
        }
    }

    /// The end of a chunk-size line.
    fn chunk(&self, size: u64) -> State {
        match size {
            0 => State::Trailers(false),
            n => State::ChunkData(n),
        }
    }

    /// Head bytes up to and including the blank line; returns how many
    /// were used.
    fn head(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        loop {
            let rest = &bytes[used..];
            let end = memchr::memchr(b'\n', rest);
            self.line_piece(&rest[..end.unwrap_or(rest.len())]);
            let Some(at) = end else {
                return bytes.len();
            };
            used += at + 1;
            if self.end_line() {
                return used;
            }
        }
    }

    /// Part of a head line (without its `\n`): the first bytes are kept
    /// lowercased for the name; a `Content-Length` value is read as it
    /// goes. Everything else is skipped.
    fn line_piece(&mut self, piece: &[u8]) {
        // A line of only `\r` is the blank one (a name never holds `\r`).
        self.nonempty |= !(piece.is_empty() || piece == b"\r");
        let before = self.pos;
        if before < self.line.len() {
            let take = (self.line.len() - before).min(piece.len());
            for (to, from) in self.line[before..before + take].iter_mut().zip(piece) {
                *to = from.to_ascii_lowercase();
            }
        }
        self.pos += piece.len();
        let value = if before < CL.len() && self.pos >= CL.len() {
            if self.lines == 0 || !self.line.starts_with(CL) {
                return;
            }
            self.seen |= CONTENT_LENGTH;
            (self.length, self.value, self.digits) = (Some(0), true, false);
            &piece[CL.len() - before..]
        } else {
            piece
        };
        for &b in value {
            if !self.value {
                break;
            }
            self.length_byte(b);
        }
    }

    /// A byte of a `Content-Length` value: digits accumulate after
    /// optional whitespace; anything else ends the value.
    fn length_byte(&mut self, b: u8) {
        match b {
            b'0'..=b'9' => {
                let n = self.length.unwrap_or(0);
                self.length = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')));
                if self.length.is_none() {
                    self.state = State::Stop;
                }
                self.digits = true;
            }
            b' ' | b'\t' if !self.digits => {}
            _ => self.value = false,
        }
    }

    /// A line of the head ended; returns true when it ended the head.
    fn end_line(&mut self) -> bool {
        let nonempty = std::mem::take(&mut self.nonempty);
        self.value = false;
        let line = &self.line[..self.pos.min(self.line.len())];
        self.pos = 0;
        if nonempty {
            if self.lines > 0 && line.starts_with(TE) {
                self.seen |= TRANSFER_ENCODING;
            }
            self.lines += 1;
            return false;
        }
        if self.lines == 0 {
            // Blank lines before a request line are skipped.
            return false;
        }
        let number = self.heads;
        self.heads += 1;
        let (seen, length) = (self.seen, self.length.take());
        (self.lines, self.seen) = (0, 0);
        if seen == CONTENT_LENGTH | TRANSFER_ENCODING && self.ambiguous.is_none() {
            self.ambiguous = Some(number);
        }
        if self.state != State::Stop {
            self.state = match (seen & TRANSFER_ENCODING != 0, length) {
                (true, _) => State::ChunkSize(0),
                (false, Some(n)) if n > 0 => State::Body(n),
                _ => State::Head,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> Framing {
        let mut s = Framing::default();
        for p in pieces {
            s.feed(p);
        }
        s
    }

    #[test]
    fn finds_both_in_any_order_and_case() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 4\r\n\r\n";
        assert_eq!(scan(&[head]).ambiguous, Some(0));
    }

    #[test]
    fn split_across_reads_byte_by_byte() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        let pieces: Vec<&[u8]> = head.chunks(1).collect();
        assert_eq!(scan(&pieces).ambiguous, Some(0));
    }

    #[test]
    fn bodies_are_skipped_so_pipelined_heads_are_numbered() {
        let stream: &[u8] = b"\r\nPOST /a HTTP/1.1\r\nContent-Length: 30\r\n\r\n\
            Transfer-Encoding: chunked\r\n\r\n\
            POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\nA\r\nContent-Le\r\n0\r\nX-Trailer: 1\r\n\r\n\
            GET /c HTTP/1.1\r\nX-Note: content-length: 5\r\n\r\n\
            POST /d HTTP/1.1\r\nContent-Length:  12 \r\nTransfer-Encoding: chunked\r\n\r\n";
        for size in [1, 7, stream.len()] {
            let pieces: Vec<&[u8]> = stream.chunks(size).collect();
            let s = scan(&pieces);
            assert_eq!((s.heads, s.ambiguous), (4, Some(3)), "pieces of {size}");
        }
    }

    #[test]
    fn a_long_content_length_value_is_read_whole() {
        let s = scan(&[b"POST / HTTP/1.1\r\nContent-Length: 0000000000000000000000000003\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"]);
        assert_eq!((s.heads, s.ambiguous), (2, None));
    }

    #[test]
    fn stops_on_nonsense() {
        let s = scan(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"]);
        assert_eq!((s.heads, s.ambiguous), (1, None));
    }
}
