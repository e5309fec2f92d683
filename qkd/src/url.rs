//! The URL handling ETSI 014 needs: parse the `https://host:port[/prefix]` KME base URL (with
//! the `url` crate) and percent-encode / decode path segments and query values (SAE and key
//! IDs are free-form), with `percent-encoding`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::pki_types::ServerName;
use url::{Host, Position, Url};

/// Everything but RFC 3986 unreserved characters (ALPHA / DIGIT / "-" / "." / "_" / "~").
/// Stricter than what a path segment needs, so an ID reads the same in a path and a query.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed `https://` KME base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmeUrl {
    /// Host without IPv6 brackets: used for DNS/IP connect and TLS server name.
    pub host: String,
    pub port: u16,
    /// The `Host` header value (`host[:port]`, IPv6 brackets kept).
    pub authority: String,
    /// Path before `/api/v1/keys`, without a trailing slash (usually empty).
    pub prefix: String,
}

impl KmeUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        // Checked on the text as written: the url crate lowercases the scheme, drops spaces
        // around and tabs or newlines inside, reads `\` as `/`, takes `https:/host` and
        // `https:///host`, and forgets an empty `@` (it is right to, for browsers).
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("KME URL must start with https://: {url:?}"))?;
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(format!(
                "KME URL must not contain spaces, backslashes or control characters: {url:?}"
            ));
        }
        let written_authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if written_authority.is_empty() {
            return Err(format!("KME URL has no host: {url:?}"));
        }
        if written_authority.contains('@') {
            return Err(format!("KME URL must not carry credentials: {url:?}"));
        }
        let parsed = Url::parse(url).map_err(|e| match e {
            url::ParseError::EmptyHost => format!("KME URL has no host: {url:?}"),
            url::ParseError::InvalidPort => format!("bad port in {url:?}"),
            url::ParseError::InvalidIpv6Address => format!("bad IPv6 address in {url:?}"),
            e => format!("{e} in {url:?}"),
        })?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "KME URL must not have a query or fragment: {url:?}"
            ));
        }
        let host = match parsed.host() {
            Some(Host::Domain(d)) => d.to_owned(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(format!("KME URL has no host: {url:?}")),
        };
        // `https` has a known default port, so this is never None.
        let port = parsed.port_or_known_default().unwrap_or(443);
        // `host[:port]` with IPv6 brackets kept and the default port 443 left out (no
        // credentials, refused above, can sit before the host).
        let authority = parsed[Position::BeforeHost..Position::AfterPort].to_owned();
        ServerName::try_from(host.clone())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
        Ok(Self {
            host,
            port,
            authority,
            prefix: parsed.path().trim_end_matches('/').to_owned(),
        })
    }

    pub fn server_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.host.clone())
            .map_err(|_| format!("{:?} is not a valid TLS server name", self.host))
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Percent-decode; `None` on a broken escape or non-UTF-8 result. `+` stays `+`.
pub fn decode(s: &str) -> Option<String> {
    // percent_decode_str passes a broken escape ("%4", "%zz") through as text; refuse it, so
    // that a malformed ID is an error and not a different ID.
    let bytes = s.as_bytes();
    let broken = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if broken {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests;
