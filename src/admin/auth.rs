//! The bearer token check for `/api` calls, in constant time.

use http::{header, HeaderMap};

/// Whether `headers` carry `Authorization: Bearer <expected>`. The
/// comparison takes the same time wherever the first difference is, so
/// the token cannot be guessed byte by byte from response times.
pub fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .as_bytes();
    constant_time_eq(given, expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // The length is not secret enough to hide, but the contents are:
    // compare every byte of the expected token whatever was given.
    let mut diff = (a.len() ^ b.len()) as u64;
    for (i, &x) in b.iter().enumerate() {
        let y = a.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(token_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(!token_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!token_matches(&with("Bearer s3cret2"), "s3cret"));
        assert!(!token_matches(&with("Bearer S3cret"), "s3cret"));
        assert!(!token_matches(&with("s3cret"), "s3cret"));
        assert!(!token_matches(&HeaderMap::new(), "s3cret"));
    }
}
