//! The vector file format both versions' files share: `name = hex` lines, `#` comments
//! and blank lines skipped, a name with no value (`name =`) an empty one.

use std::collections::BTreeMap;

/// Every `name = hex` line of `text` (file `name`), each name once.
pub fn parse(name: &str, text: &str) -> BTreeMap<String, Vec<u8>> {
    let mut values = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or((line.trim_end_matches(" ="), ""));
        let v = (0..v.len() / 2)
            .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let fresh = values.insert(k.to_string(), v).is_none();
        assert!(fresh, "{name}: {k} twice");
    }
    values
}
