//! Request path normalization before routing, as nginx does: a request is
//! routed, and forwarded, by the path the upstream will understand, so
//! `/api/../admin` can never reach the `/api` route's pool.
//!
//! The policy (also in `docs/security.md`):
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!   decoded, in either hex case (`%2e`, `%2E`, `%61`);
//! - `.` and `..` segments are removed (RFC 3986 §5.2.4), after decoding;
//!   a `..` above the root is rejected;
//! - repeated slashes are merged (`//a` is `/a`);
//! - an encoded slash or backslash (`%2F`, `%5C`), a raw backslash, an
//!   encoded NUL and a malformed escape are rejected: veer cannot know
//!   whether the upstream would treat them as separators;
//! - every other escape (`%20`, `%C3%A9`, reserved characters) is kept as
//!   sent, and the query is never touched.
//!
//! Rejections are answered 400. The common path (nothing to change) is
//! two passes over the bytes and no allocation.

use std::borrow::Cow;

/// Why a request path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is not absolute")]
    NotAbsolute,
    #[error("malformed percent-encoding")]
    BadEscape,
    #[error("encoded slash, backslash or NUL")]
    EncodedSeparator,
    #[error("backslash in path")]
    Backslash,
    #[error("path climbs above the root")]
    AboveRoot,
}

/// The normalized form of `path` (borrowed when already normal).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if path == "*" {
        // `OPTIONS *`.
        return Ok(Cow::Borrowed(path));
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decode = false;
    // Most paths have neither: one vectorized scan settles it.
    let mut i = memchr::memchr2(b'%', b'\\', bytes).unwrap_or(bytes.len());
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let byte = escaped(bytes, i).ok_or(PathError::BadEscape)?;
                match byte {
                    b'/' | b'\\' | 0 => return Err(PathError::EncodedSeparator),
                    b if unreserved(b) => decode = true,
                    _ => {}
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    if !decode && !needs_segments(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded: Cow<'_, str> = match decode {
        true => Cow::Owned(decode_unreserved(bytes)),
        false => Cow::Borrowed(path),
    };
    remove_dots(&decoded).map(Cow::Owned)
}

/// The byte `%XX` at `at` stands for.
fn escaped(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let hi = hex(*bytes.get(at + 1)?)?;
    let lo = hex(*bytes.get(at + 2)?)?;
    Some((hi * 16 + lo) as u8)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether any segment is `.`, `..` or empty (other than a trailing one).
fn needs_segments(path: &str) -> bool {
    let finder = |pair: &[u8]| memchr::memmem::find(path.as_bytes(), pair).is_some();
    if !finder(b"/.") && !finder(b"//") {
        return false;
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == "." || segment == ".." || (segment.is_empty() && !last) {
            return true;
        }
    }
    false
}

/// Decodes escapes of unreserved characters; keeps the others as sent.
fn decode_unreserved(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escaped(bytes, i).filter(|&b| bytes[i] == b'%' && unreserved(b)) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII was decoded into a valid UTF-8 string.
    String::from_utf8(out).unwrap_or_default()
}

/// RFC 3986 §5.2.4 on an absolute path, merging empty segments.
fn remove_dots(path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." | "" => {}
            ".." => {
                let cut = out.rfind('/').ok_or(PathError::AboveRoot)?;
                out.truncate(cut);
            }
            s => {
                out.push('/');
                out.push_str(s);
                continue;
            }
        }
        // A path ending in `/`, `/.` or `/..` names a directory.
        if last {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> Result<String, PathError> {
        normalize(path).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in [
            "/",
            "/api/x",
            "/a/b/",
            "/.well-known/x",
            "/a%20b",
            "/a..b/c.",
            "*",
        ] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn dots_and_slashes() {
        let cases = [
            ("/api/../admin", "/admin"),
            ("/api/./x", "/api/x"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("//api//x", "/api/x"),
            ("/api/%2e%2e/admin", "/admin"),
            ("/api/%2E%2e/admin", "/admin"),
            ("/api/.%2E/admin", "/admin"),
            ("/%61pi/x%7e", "/api/x~"),
            ("/a/%C3%A9/../b", "/a/b"),
        ];
        for (from, to) in cases {
            assert_eq!(norm(from).as_deref(), Ok(to), "{from}");
        }
    }

    #[test]
    fn refused() {
        let cases = [
            ("/../etc", PathError::AboveRoot),
            ("/..", PathError::AboveRoot),
            ("/a/../../etc", PathError::AboveRoot),
            ("/api/..%2fadmin", PathError::EncodedSeparator),
            ("/api/..%5Cadmin", PathError::EncodedSeparator),
            ("/a%00", PathError::EncodedSeparator),
            ("/api\\..\\admin", PathError::Backslash),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("a/b", PathError::NotAbsolute),
        ];
        for (path, err) in cases {
            assert_eq!(norm(path), Err(err), "{path}");
        }
    }
}
