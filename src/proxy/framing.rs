//! Which framing headers a raw HTTP/1 request head carried.
//!
//! hyper resolves `Content-Length` + `Transfer-Encoding` by letting the
//! chunked encoding win (RFC 9112 §6.3) and silently drops the length, so
//! the service can no longer tell the request was ambiguous. veer rejects
//! such requests instead, as nginx does, so this scanner looks at the head
//! bytes as they are read and remembers which of the two headers it saw.
//! It only reads line starts (one `memchr` per line).

/// `Content-Length` seen.
pub const CONTENT_LENGTH: u8 = 1;
/// `Transfer-Encoding` seen.
pub const TRANSFER_ENCODING: u8 = 2;

const LONGEST: usize = b"transfer-encoding:".len();

/// Scans one request head, fed in pieces as reads return.
#[derive(Debug, Default)]
pub struct HeadScan {
    /// Bytes of the current line so far (lowercased), up to `LONGEST`.
    line: [u8; LONGEST],
    len: usize,
    /// The current line has any content (it may be longer than `line`).
    nonempty: bool,
    /// The blank line ending the head was seen: the rest is body.
    done: bool,
    pub seen: u8,
}

impl HeadScan {
    pub fn reset(&mut self) {
        *self = HeadScan::default();
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !self.done && !bytes.is_empty() {
            let end = memchr::memchr(b'\n', bytes);
            let piece = &bytes[..end.unwrap_or(bytes.len())];
            // A line of only `\r` is the blank one; a name never holds `\r`.
            self.nonempty = self.nonempty || piece.iter().any(|&b| b != b'\r');
            let take = (LONGEST - self.len).min(piece.len());
            for (to, from) in self.line[self.len..self.len + take].iter_mut().zip(piece) {
                *to = from.to_ascii_lowercase();
            }
            self.len += take;
            let Some(end) = end else { return };
            self.end_line();
            bytes = &bytes[end + 1..];
        }
    }

    fn end_line(&mut self) {
        if !self.nonempty {
            self.done = true;
            return;
        }
        let line = &self.line[..self.len];
        if line.starts_with(b"content-length:") {
            self.seen |= CONTENT_LENGTH;
        } else if line.starts_with(b"transfer-encoding:") {
            self.seen |= TRANSFER_ENCODING;
        }
        self.len = 0;
        self.nonempty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> u8 {
        let mut s = HeadScan::default();
        for p in pieces {
            s.feed(p);
        }
        s.seen
    }

    #[test]
    fn finds_both_in_any_order_and_case() {
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 4\r\n\r\n";
        assert_eq!(scan(&[head]), CONTENT_LENGTH | TRANSFER_ENCODING);
    }

    #[test]
    fn split_across_reads() {
        let pieces: [&[u8]; 4] = [
            b"POST / HTTP/1.1\r\nContent-Le",
            b"ngth: 4\r\nTransfer",
            b"-Encoding: chunked\r",
            b"\n\r\n",
        ];
        assert_eq!(scan(&pieces), CONTENT_LENGTH | TRANSFER_ENCODING);
    }

    #[test]
    fn body_after_the_head_is_ignored() {
        let head =
            b"POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(scan(&[head]), CONTENT_LENGTH);
    }

    #[test]
    fn header_values_do_not_count() {
        let head = b"GET / HTTP/1.1\r\nX-Note: content-length: 5\r\n\r\n";
        assert_eq!(scan(&[head]), 0);
    }
}
