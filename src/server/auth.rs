//! Bearer tokens (SPEC §8, §10): the presented token is hashed with SHA-256 and compared
//! with every configured hash in constant time; the token itself is never stored or
//! logged.

use axum::http::{header, HeaderMap};

use super::config::Token;
use super::error::ApiError;

/// The configured token presented in `Authorization: Bearer …`, or 401.
pub fn authenticate<'a>(headers: &HeaderMap, tokens: &'a [Token]) -> Result<&'a Token, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110): `bearer`, `BEARER` alike.
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .and_then(|_| v.get(7..))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, presented.as_bytes());
    let hash = digest.as_ref();
    // Every hash is compared, whatever matched first: the time taken says nothing.
    let mut found = None;
    for t in tokens {
        let diff = t
            .hash
            .iter()
            .zip(hash)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && found.is_none() {
            found = Some(t);
        }
    }
    found.ok_or_else(ApiError::unauthorized)
}
