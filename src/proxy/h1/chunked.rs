//! An incremental decoder of chunked request bodies (RFC 9112 §7.1):
//! fed bytes as they arrive, it hands out the data and says where the
//! body ends. Strict: hex sizes of at most 16 digits, CRLF line endings
//! only (a bare LF is refused), extensions without control characters
//! and bounded in size, trailer fields that parse as header fields.

/// Extension bytes allowed per body (hyper allows 16 KiB).
const MAX_EXTENSIONS: usize = 4096;
/// Trailer section bytes allowed.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; how many so far.
    Size(u8),
    /// Whitespace after the size.
    SizeSpace,
    /// A chunk extension, up to its line's CR.
    Extension,
    /// The LF after a size line's CR.
    SizeLf,
    /// Chunk data still to come.
    Data,
    DataCr,
    DataLf,
    /// The trailer section (after the last chunk).
    Trailers,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad chunked body: {0}")]
pub struct ChunkError(pub &'static str);

#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// The size being read, or the data left in the current chunk.
    size: u64,
    extensions: usize,
    trailers: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            state: State::Size(0),
            size: 0,
            extensions: 0,
            trailers: Vec::new(),
        }
    }
}

impl Decoder {
    /// Decodes what it can of `input`, handing chunk data to `data`.
    /// Returns how many bytes were used and whether the body ended
    /// (bytes after its end are left unused: the next request's).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), ChunkError> {
        let mut at = 0;
        while at < input.len() {
            if self.state == State::Data {
                let take = (input.len() - at).min(self.size.min(usize::MAX as u64) as usize);
                data(&input[at..at + take]);
                at += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            if self.state == State::Done {
                break;
            }
            let byte = input[at];
            at += 1;
            self.step(byte)?;
        }
        Ok((at, self.state == State::Done))
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn step(&mut self, byte: u8) -> Result<(), ChunkError> {
        self.state = match (self.state, byte) {
            (State::Size(n), b) if b.is_ascii_hexdigit() => {
                if n == 16 {
                    return Err(ChunkError("chunk size too large"));
                }
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                self.size = self.size << 4 | digit;
                State::Size(n + 1)
            }
            (State::Size(0), _) => return Err(ChunkError("chunk size missing")),
            (State::Size(_) | State::SizeSpace, b' ' | b'\t') => State::SizeSpace,
            (State::Size(_) | State::SizeSpace, b';') => State::Extension,
            (State::Size(_) | State::SizeSpace | State::Extension, b'\r') => State::SizeLf,
            (State::Size(_) | State::SizeSpace, _) => {
                return Err(ChunkError("invalid byte in chunk size line"))
            }
            (State::Extension, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                self.extensions += 1;
                if self.extensions > MAX_EXTENSIONS {
                    return Err(ChunkError("chunk extensions too long"));
                }
                State::Extension
            }
            (State::Extension, _) => {
                return Err(ChunkError("control character in chunk extension"))
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::Trailers,
            (State::SizeLf, b'\n') => State::Data,
            (State::SizeLf, _) => return Err(ChunkError("chunk size line not ended by CRLF")),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr, _) => return Err(ChunkError("chunk data not followed by CRLF")),
            (State::DataLf, b'\n') => {
                self.size = 0;
                State::Size(0)
            }
            (State::DataLf, _) => return Err(ChunkError("chunk data not followed by CRLF")),
            (State::Trailers, b) => {
                self.trailers.push(b);
                if self.trailers.len() > MAX_TRAILERS {
                    return Err(ChunkError("trailer section too large"));
                }
                match self.trailers.ends_with(b"\n") {
                    true => self.trailer_line()?,
                    false => State::Trailers,
                }
            }
            (State::Data | State::Done, _) => unreachable!("handled in decode"),
        };
        Ok(())
    }

    /// A trailer line ended: the blank line ends the body, once every
    /// field before it parses.
    fn trailer_line(&mut self) -> Result<State, ChunkError> {
        let block = &self.trailers;
        if !block.ends_with(b"\r\n") {
            return Err(ChunkError("trailer line not ended by CRLF"));
        }
        let line_start = block[..block.len() - 2]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if line_start != block.len() - 2 {
            return Ok(State::Trailers);
        }
        // The blank line: check the fields.
        if block.len() > 2 {
            let mut fields = [httparse::EMPTY_HEADER; super::MAX_HEADERS];
            match httparse::parse_headers(block, &mut fields) {
                Ok(httparse::Status::Complete((used, _))) if used == block.len() => {}
                _ => return Err(ChunkError("malformed trailer field")),
            }
        }
        Ok(State::Done)
    }
}
