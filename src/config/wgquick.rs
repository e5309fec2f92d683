//! wg-quick's interface keys under their TOML names: `pre_up`, `post_up`, `pre_down`,
//! `post_down` (a string or an array of strings, run by `crate::hooks`), `table` ("auto",
//! "off" or a routing-table number) and `fwmark` (a number, decimal or 0x hex, or "off").

use serde::{Deserialize, Deserializer};
use tunnel::settings::RouteTable;

/// A hook key: one command or a list of them, as wg-quick allows the key repeated.
#[derive(Default)]
pub(super) struct Commands(pub Vec<String>);

impl<'de> Deserialize<'de> for Commands {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let commands = match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("must be a command string or an array of command strings")
        })? {
            OneOrMany::One(c) => vec![c],
            OneOrMany::Many(c) => c,
        };
        if commands.iter().any(|c| c.trim().is_empty()) {
            return Err(serde::de::Error::custom("a hook command must not be empty"));
        }
        Ok(Self(commands))
    }
}

/// A string or integer value, as wg-quick writes `Table = 1234` and `Table = off` alike.
#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrInt {
    Int(i64),
    Str(String),
}

fn number(value: &str) -> Option<u32> {
    let value = value.trim();
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// `[interface] table`.
pub(super) struct Table(pub RouteTable);

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str =
            "must be \"auto\", \"off\" or a routing table number (1-4294967295, not 253-255)";
        let id = match StrOrInt::deserialize(d).map_err(|_| serde::de::Error::custom(WHAT))? {
            StrOrInt::Str(s) if s.trim() == "auto" => return Ok(Self(RouteTable::Auto)),
            StrOrInt::Str(s) if s.trim() == "off" => return Ok(Self(RouteTable::Off)),
            StrOrInt::Str(s) => s.trim().parse::<u32>().ok(),
            StrOrInt::Int(i) => u32::try_from(i).ok(),
        };
        // 0 is "unspecified"; 253-255 are the kernel's default, main and local tables.
        match id {
            Some(n) if n != 0 && !(253..=255).contains(&n) => Ok(Self(RouteTable::Id(n))),
            _ => Err(serde::de::Error::custom(WHAT)),
        }
    }
}

/// `[interface] fwmark`; "off" and 0 mean no mark, as with wg.
pub(super) struct Fwmark(pub Option<u32>);

impl<'de> Deserialize<'de> for Fwmark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "must be a 32-bit number (decimal or 0x hex) or \"off\"";
        let mark = match StrOrInt::deserialize(d).map_err(|_| serde::de::Error::custom(WHAT))? {
            StrOrInt::Str(s) if s.trim() == "off" => Some(0),
            StrOrInt::Str(s) => number(&s),
            StrOrInt::Int(i) => u32::try_from(i).ok(),
        };
        mark.map(|m| Self(Some(m).filter(|m| *m != 0)))
            .ok_or_else(|| serde::de::Error::custom(WHAT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        table: Option<Table>,
        fwmark: Option<Fwmark>,
        post_up: Option<Commands>,
    }

    fn parse(text: &str) -> Result<Doc, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn table_values() {
        let table = |v: &str| parse(&format!("table = {v}")).map(|d| d.table.map(|t| t.0));
        assert_eq!(table("\"auto\""), Ok(Some(RouteTable::Auto)));
        assert_eq!(table("\"off\""), Ok(Some(RouteTable::Off)));
        assert_eq!(table("1234"), Ok(Some(RouteTable::Id(1234))));
        assert_eq!(table("\"51820\""), Ok(Some(RouteTable::Id(51820))));
        for bad in ["0", "254", "-1", "4294967296", "\"main\"", "true"] {
            let e = table(bad).err().unwrap_or_default();
            assert!(e.contains("routing table number"), "{bad}: {e}");
        }
    }

    #[test]
    fn fwmark_values() {
        let mark = |v: &str| parse(&format!("fwmark = {v}")).map(|d| d.fwmark.and_then(|f| f.0));
        assert_eq!(mark("0x1234"), Ok(Some(0x1234)), "hex as a TOML integer");
        assert_eq!(mark("\"0x1234\""), Ok(Some(0x1234)));
        assert_eq!(mark("51820"), Ok(Some(51820)));
        assert_eq!(mark("\"off\""), Ok(None));
        assert_eq!(mark("0"), Ok(None));
        for bad in ["-1", "0x100000000", "\"0xzz\"", "1.5"] {
            assert!(mark(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hooks_take_a_string_or_an_array() {
        let hooks = |v: &str| parse(&format!("post_up = {v}")).map(|d| d.post_up.map(|c| c.0));
        assert_eq!(hooks("\"ip rule\""), Ok(Some(vec!["ip rule".to_owned()])));
        assert_eq!(
            hooks("[\"a %i\", \"b\"]"),
            Ok(Some(vec!["a %i".to_owned(), "b".to_owned()]))
        );
        assert!(hooks("\"  \"").is_err());
        assert!(hooks("3").is_err());
    }
}
