//! Key IDs: random UUID v4 strings. They are drawn independently of the key material so
//! that an ID, which travels in the clear, says nothing about its key.

/// A fresh random UUID v4 (RFC 9562), lower-case hyphenated.
pub fn new_key_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The store's form of a key ID given over either API: a UUID (ETSI 014) in any case, or
/// its 32 hex digits without hyphens (the SKIP form), both become the lower-case hyphenated
/// UUID the store holds. Anything else is kept as it is (and will not be found).
///
/// This is what lets one simulated pair back an ETSI 014 site and a SKIP site: a keyId is
/// 128 bits either way, only written differently.
pub fn canonical(id: &str) -> String {
    let digits: String = id
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let uuid_shaped = id.len() == 36
        && id
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    let plain = id.len() == 32 && !id.contains('-');
    if digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit()) && (uuid_shaped || plain)
    {
        format!(
            "{}-{}-{}-{}-{}",
            &digits[0..8],
            &digits[8..12],
            &digits[12..16],
            &digits[16..20],
            &digits[20..32]
        )
    } else {
        id.to_owned()
    }
}

/// The SKIP form of a stored key ID: its hex digits, no hyphens.
pub fn skip_form(id: &str) -> String {
    id.chars().filter(|c| *c != '-').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_one_key() {
        let id = new_key_id().unwrap();
        assert_eq!(canonical(&id), id);
        assert_eq!(canonical(&id.to_uppercase()), id);
        assert_eq!(canonical(&skip_form(&id)), id);
        assert_eq!(canonical(&skip_form(&id).to_uppercase()), id);
        assert_eq!(canonical("not-an-id"), "not-an-id");
        assert_eq!(
            canonical("0123456789abcdef0123456789abcdef0"),
            "0123456789abcdef0123456789abcdef0"
        );
    }
}
