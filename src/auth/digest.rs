//! HTTP Digest access authentication (RFC 7616, compatible with RFC 2617) as the Atlas Admin API
//! speaks it: realm `MMS Public API`, `qop="auth"`, algorithm MD5, an opaque value.
//!
//! Nonces are stateless so that any node sharing the deployment key can check a nonce another
//! node issued: `base64url(issued_at_secs (8, big-endian) || random (12) || HMAC-SHA-256(key,
//! issued_at || random)[..16])`. A nonce is valid while `issued_at + ttl` has not passed; after
//! that a correct response earns `stale=true` so that clients retry with a new nonce without
//! asking the user again. Replayed nonce counts are caught by the caller (see `auth::service`),
//! because that needs shared state.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest as _, Md5};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::secrets::{SecretBox, hmac_sha256};

/// The realm Atlas announces; clients hash it into HA1, so it must match exactly.
pub const REALM: &str = "MMS Public API";

/// Tolerated clock difference between the node that issued a nonce and the one checking it.
const CLOCK_SKEW_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("authorization header is not a digest credential")]
    NotDigest,
    #[error("malformed digest credential: {0}")]
    Malformed(&'static str),
}

/// The parameters of an `Authorization: Digest …` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// Parses the header value; the scheme name is case-insensitive, values may be quoted
    /// strings (with backslash escapes, and commas inside, as in a `uri` with a query) or tokens.
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let header = header.trim_start();
        let (scheme, rest) = header.split_once(' ').ok_or(DigestError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let mut creds = DigestCredentials::default();
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        for (name, value) in parse_params(rest)? {
            match name.to_ascii_lowercase().as_str() {
                "username" => username = Some(value),
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "uri" => uri = Some(value),
                "response" => response = Some(value),
                "algorithm" => creds.algorithm = Some(value),
                "qop" => creds.qop = Some(value),
                "nc" => creds.nc = Some(value),
                "cnonce" => creds.cnonce = Some(value),
                "opaque" => creds.opaque = Some(value),
                // `userhash`, `charset` and extensions are not used by Atlas clients.
                _ => {}
            }
        }
        creds.username = username.ok_or(DigestError::Malformed("missing username"))?;
        creds.realm = realm.ok_or(DigestError::Malformed("missing realm"))?;
        creds.nonce = nonce.ok_or(DigestError::Malformed("missing nonce"))?;
        creds.uri = uri.ok_or(DigestError::Malformed("missing uri"))?;
        creds.response = response.ok_or(DigestError::Malformed("missing response"))?;
        Ok(creds)
    }

    /// The nonce count as a number (`nc` is 8 hex digits).
    pub fn nonce_count(&self) -> Option<u64> {
        let nc = self.nc.as_deref()?;
        if nc.is_empty() || nc.len() > 8 {
            return None;
        }
        u64::from_str_radix(nc, 16).ok()
    }

    /// The response the client should have sent, given the stored HA1 and the request method.
    /// `None` when the credential uses something other than MD5 with `qop=auth`.
    pub fn expected_response(&self, ha1_hex: &str, method: &str) -> Option<String> {
        match self.algorithm.as_deref() {
            None => {}
            Some(a) if a.eq_ignore_ascii_case("md5") => {}
            Some(_) => return None,
        }
        // Without qop there is no nonce count and so no replay protection: we require auth.
        if self.qop.as_deref() != Some("auth") {
            return None;
        }
        let nc = self.nc.as_deref()?;
        let cnonce = self.cnonce.as_deref()?;
        let ha2 = ha2(method, &self.uri);
        Some(response(ha1_hex, &self.nonce, nc, cnonce, "auth", &ha2))
    }
}

fn parse_params(mut s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s
            .find('=')
            .ok_or(DigestError::Malformed("parameter without value"))?;
        let name = s[..eq].trim().to_string();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return Err(DigestError::Malformed("bad parameter name"));
        }
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            v.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => v.push(c),
                }
            }
            let end = end.ok_or(DigestError::Malformed("unterminated quoted string"))?;
            value = v;
            s = &quoted[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        out.push((name, value));
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// HA1 = MD5(username:realm:password), lowercase hex.
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&[username, realm, password])
}

/// HA2 = MD5(method:uri) for `qop=auth`.
pub fn ha2(method: &str, uri: &str) -> String {
    md5_hex(&[method, uri])
}

/// response = MD5(HA1:nonce:nc:cnonce:qop:HA2).
pub fn response(ha1: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, ha2: &str) -> String {
    md5_hex(&[ha1, nonce, nc, cnonce, qop, ha2])
}

/// Constant-time equality of two hex digests (ASCII case-insensitive, as some clients uppercase).
pub fn digests_equal(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Signed by this deployment and still fresh; `expires_at` in unix seconds.
    Fresh { expires_at: u64 },
    /// Signed by this deployment but past its lifetime: answer `stale=true`.
    Expired,
    /// Not ours (or damaged).
    Invalid,
}

/// Issues and checks stateless nonces, and knows the deployment's `opaque` value.
#[derive(Clone)]
pub struct NonceSigner {
    key: [u8; 32],
    opaque: String,
    ttl: Duration,
}

impl std::fmt::Debug for NonceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

const NONCE_RANDOM_LEN: usize = 12;
const NONCE_MAC_LEN: usize = 16;

impl NonceSigner {
    pub fn new(secrets: &SecretBox, ttl: Duration) -> Self {
        let key = secrets.derive_key("snapex digest nonce v1");
        let opaque = hex::encode(&secrets.derive_key("snapex digest opaque v1")[..16]);
        NonceSigner { key, opaque, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `opaque` value every node announces and expects back.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// A nonce dated `issued_at` (unix seconds); tests use old dates to get expired nonces.
    pub fn issue_at(&self, issued_at: u64) -> String {
        let mut buf = Vec::with_capacity(8 + NONCE_RANDOM_LEN + NONCE_MAC_LEN);
        buf.extend_from_slice(&issued_at.to_be_bytes());
        let mut random = [0u8; NONCE_RANDOM_LEN];
        rand::rngs::OsRng.fill_bytes(&mut random);
        buf.extend_from_slice(&random);
        let mac = hmac_sha256(&self.key, &buf);
        buf.extend_from_slice(&mac[..NONCE_MAC_LEN]);
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn issue(&self) -> String {
        self.issue_at(unix_now())
    }

    pub fn check_at(&self, nonce: &str, now: u64) -> NonceState {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceState::Invalid;
        };
        if bytes.len() != 8 + NONCE_RANDOM_LEN + NONCE_MAC_LEN {
            return NonceState::Invalid;
        }
        let (signed, mac) = bytes.split_at(8 + NONCE_RANDOM_LEN);
        let expected = hmac_sha256(&self.key, signed);
        if !bool::from(expected[..NONCE_MAC_LEN].ct_eq(mac)) {
            return NonceState::Invalid;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&signed[..8]);
        let issued_at = u64::from_be_bytes(ts);
        if issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return NonceState::Invalid;
        }
        let expires_at = issued_at.saturating_add(self.ttl.as_secs());
        if now >= expires_at {
            NonceState::Expired
        } else {
            NonceState::Fresh { expires_at }
        }
    }

    pub fn check(&self, nonce: &str) -> NonceState {
        self.check_at(nonce, unix_now())
    }

    /// The `WWW-Authenticate` value for a new challenge.
    pub fn challenge(&self, stale: bool) -> String {
        let nonce = self.issue();
        let mut value = format!(
            "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", opaque=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.opaque
        );
        if stale {
            value.push_str(", stale=true");
        } else {
            value.push_str(", stale=false");
        }
        value
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5: Mufasa / "Circle Of Life", GET /dir/index.html.
    #[test]
    fn rfc2617_example() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let creds = DigestCredentials::parse(header).unwrap();
        assert_eq!(creds.username, "Mufasa");
        assert_eq!(creds.nonce_count(), Some(1));
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(
            creds.expected_response(&ha1, "GET").as_deref(),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert!(digests_equal(
            &creds.response,
            "6629FAE49393A05397450978507C4EF1"
        ));
        assert!(!digests_equal(&creds.response, "6629fae4"));
    }

    /// RFC 7616 §3.9.1 (MD5): Mufasa / "Circle of Life", realm http-auth@example.org.
    #[test]
    fn rfc7616_md5_example() {
        let ha1 = ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        let ha2 = ha2("GET", "/dir/index.html");
        let r = response(
            &ha1,
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "auth",
            &ha2,
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn quoted_commas_escapes_and_other_schemes() {
        let creds = DigestCredentials::parse(
            r#"DIGEST username="a\"b", realm="MMS Public API", nonce="n", uri="/x?a=1,2", response="r", qop="auth", nc=0000000a, cnonce="c""#,
        )
        .unwrap();
        assert_eq!(creds.username, "a\"b");
        assert_eq!(creds.uri, "/x?a=1,2");
        assert_eq!(creds.nonce_count(), Some(10));
        assert_eq!(
            DigestCredentials::parse("Basic dXNlcjpwYXNz"),
            Err(DigestError::NotDigest)
        );
        assert!(DigestCredentials::parse(r#"Digest username="x", realm="y""#).is_err());
        assert!(DigestCredentials::parse(r#"Digest username="x"#).is_err());
    }

    #[test]
    fn non_auth_qop_or_algorithm_is_refused() {
        let mut creds = DigestCredentials {
            username: "u".into(),
            realm: REALM.into(),
            nonce: "n".into(),
            uri: "/".into(),
            response: "r".into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("c".into()),
            ..Default::default()
        };
        assert!(creds.expected_response("h", "GET").is_some());
        creds.algorithm = Some("SHA-256".into());
        assert!(creds.expected_response("h", "GET").is_none());
        creds.algorithm = None;
        creds.qop = None;
        assert!(creds.expected_response("h", "GET").is_none());
    }

    #[test]
    fn nonces_are_signed_and_expire() {
        let sb = SecretBox::from_key([3u8; 32]);
        let signer = NonceSigner::new(&sb, Duration::from_secs(300));
        let now = 1_800_000_000;
        let nonce = signer.issue_at(now);
        assert_eq!(
            signer.check_at(&nonce, now + 10),
            NonceState::Fresh {
                expires_at: now + 300
            }
        );
        assert_eq!(signer.check_at(&nonce, now + 300), NonceState::Expired);
        // Another deployment's key, a damaged nonce, and one from the far future are refused.
        let other = NonceSigner::new(&SecretBox::from_key([4u8; 32]), Duration::from_secs(300));
        assert_eq!(other.check_at(&nonce, now), NonceState::Invalid);
        let mut damaged = nonce.clone().into_bytes();
        damaged[10] = if damaged[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            signer.check_at(std::str::from_utf8(&damaged).unwrap(), now),
            NonceState::Invalid
        );
        assert_eq!(
            signer.check_at(&signer.issue_at(now + 3600), now),
            NonceState::Invalid
        );
        assert_eq!(signer.check_at("short", now), NonceState::Invalid);
        // Two nodes with the same key agree.
        let twin = NonceSigner::new(&SecretBox::from_key([3u8; 32]), Duration::from_secs(300));
        assert_eq!(twin.opaque(), signer.opaque());
        assert!(matches!(
            twin.check_at(&nonce, now),
            NonceState::Fresh { .. }
        ));
    }

    #[test]
    fn challenge_has_atlas_parameters() {
        let signer = NonceSigner::new(&SecretBox::from_key([5u8; 32]), Duration::from_secs(60));
        let c = signer.challenge(true);
        assert!(c.starts_with("Digest realm=\"MMS Public API\""));
        assert!(c.contains("qop=\"auth\""));
        assert!(c.contains("algorithm=MD5"));
        assert!(c.contains("stale=true"));
        assert!(c.contains(&format!("opaque=\"{}\"", signer.opaque())));
    }
}
