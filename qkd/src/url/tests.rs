use super::*;

fn ok(url: &str) -> KmeUrl {
    KmeUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn refused(url: &str) -> String {
    match KmeUrl::parse(url) {
        Ok(parsed) => panic!("{url:?} was accepted: {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn base_url_parts() {
    let u = ok("https://kme.example:8443");
    assert_eq!(
        (
            u.host.as_str(),
            u.port,
            u.authority.as_str(),
            u.prefix.as_str()
        ),
        ("kme.example", 8443, "kme.example:8443", "")
    );
    let u = ok("https://127.0.0.1");
    assert_eq!((u.port, u.authority.as_str()), (443, "127.0.0.1"));
    let u = ok("https://[::1]:8443");
    assert_eq!(
        (u.host.as_str(), u.authority.as_str()),
        ("::1", "[::1]:8443")
    );
    assert!(u.server_name().is_ok());
}

#[test]
fn hosts_are_normalized_as_the_url_standard_says() {
    // Internationalized names go to the TLS layer as their ASCII (punycode) form.
    assert_eq!(ok("https://bücher.example").host, "xn--bcher-kva.example");
    assert_eq!(ok("https://KME.Example:8443").authority, "kme.example:8443");
    // The default port is left out of the Host header, which HTTP allows.
    assert_eq!(ok("https://kme:443").authority, "kme");
    // An `@` after the authority is part of the path, not credentials.
    assert_eq!(ok("https://kme/a@b").prefix, "/a@b");
}

#[test]
fn prefix_with_and_without_trailing_slash() {
    assert_eq!(ok("https://kme:8443/").prefix, "");
    assert_eq!(ok("https://kme:8443/base").prefix, "/base");
    assert_eq!(ok("https://kme:8443/base/").prefix, "/base");
    assert_eq!(ok("https://kme:8443/a/b/").prefix, "/a/b");
}

#[test]
fn bad_base_urls_are_refused_with_the_reason() {
    let cases = [
        ("http://127.0.0.1:8443", "must start with https://"),
        ("HTTPS://kme", "must start with https://"),
        (" https://kme", "must start with https://"),
        ("https:/kme", "must start with https://"),
        ("https://", "has no host"),
        ("https://:8443", "has no host"),
        ("https:///kme", "has no host"),
        ("https://kme:notaport", "bad port"),
        ("https://kme:99999", "bad port"),
        ("https://[::1", "IPv6"),
        ("https://user@kme", "credentials"),
        ("https://user:pw@kme", "credentials"),
        ("https://:pw@kme", "credentials"),
        ("https://@kme", "credentials"),
        ("https://kme/x?y", "query or fragment"),
        ("https://kme?y", "query or fragment"),
        ("https://kme/x#f", "query or fragment"),
        ("https://kme/x?", "query or fragment"),
        ("https://kme/a b", "control characters"),
        ("https://kme\n:8443", "control characters"),
        ("https://kme/\tx", "control characters"),
        ("https://kme\\x", "control characters"),
    ];
    for (url, reason) in cases {
        let err = refused(url);
        assert!(err.contains(reason), "{url:?}: {err}");
    }
}

#[test]
fn ids_are_encoded_for_a_path_segment_and_a_query_value() {
    assert_eq!(encode("SAE_B-1.x~"), "SAE_B-1.x~");
    assert_eq!(encode("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    assert_eq!(encode("a+b&c=d%"), "a%2Bb%26c%3Dd%25");
    assert_eq!(encode("Süd"), "S%C3%BCd");
    for id in ["a/b?c#d e", "a+b&c=d%", "Süd", "..", ""] {
        assert_eq!(decode(&encode(id)).as_deref(), Some(id), "{id}");
    }
}

#[test]
fn decode_refuses_broken_escapes_and_keeps_plus() {
    assert_eq!(decode("a+b").as_deref(), Some("a+b"));
    assert_eq!(decode("%2f%2F").as_deref(), Some("//"));
    for bad in ["%", "%4", "%zz", "%+5", "a%g1", "%FF"] {
        assert_eq!(decode(bad), None, "{bad}");
    }
}
