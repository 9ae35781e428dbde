//! The client side of HTTP Digest (RFC 7616 with MD5 and `qop=auth`, as the Atlas Admin API
//! speaks it), written here rather than borrowed from `snapex::auth::digest`: a test that
//! computed its answers with the server's own functions could not catch a mistake in them.

use md5::{Digest as _, Md5};

/// The realm Atlas announces and clients hash into HA1.
pub const REALM: &str = "MMS Public API";

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// HA1 = MD5(username:realm:password), lowercase hex (password-equivalent for Digest).
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{username}:{realm}:{password}"))
}

/// HA2 = MD5(method:uri), for `qop=auth`.
pub fn ha2(method: &str, uri: &str) -> String {
    md5_hex(&format!("{method}:{uri}"))
}

/// response = MD5(HA1:nonce:nc:cnonce:qop:HA2).
pub fn response(ha1: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, ha2: &str) -> String {
    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
}

/// The value of `name="…"` in a `WWW-Authenticate: Digest …` challenge.
pub fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = challenge[start..].find('"').unwrap();
    &challenge[start..start + end]
}
