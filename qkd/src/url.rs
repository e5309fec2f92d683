//! The little URL handling ETSI 014 needs: split `https://host:port[/prefix]` and
//! percent-encode / decode path segments and query values (SAE and key IDs are free-form).

use rustls::pki_types::ServerName;

/// A parsed `https://` KME base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmeUrl {
    /// Host as written, without IPv6 brackets: used for DNS/IP connect and TLS server name.
    pub host: String,
    pub port: u16,
    /// The `Host` header value (`host:port`, brackets kept).
    pub authority: String,
    /// Path before `/api/v1/keys`, without a trailing slash (usually empty).
    pub prefix: String,
}

impl KmeUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("KME URL must start with https://: {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(format!(
                "KME URL must not have a query or fragment: {url:?}"
            ));
        }
        if authority.contains('@') {
            return Err(format!("KME URL must not carry credentials: {url:?}"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed IPv6 bracket in {url:?}"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("bad port in {url:?}"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("KME URL has no host: {url:?}"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("bad port in {url:?}"))?,
        };
        ServerName::try_from(host.to_owned())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    pub fn server_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.host.clone())
            .map_err(|_| format!("{:?} is not a valid TLS server name", self.host))
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decode; `None` on a broken escape or non-UTF-8 result. `+` stays `+`.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // from_str_radix alone would also take a sign ("%+5").
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
