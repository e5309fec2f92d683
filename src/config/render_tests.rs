//! The key lists of render.rs against the serde structs (their field names, asked from
//! serde itself) and against trident.toml(5), so a new key cannot go undocumented.

use std::cell::Cell;
use std::path::Path;

use serde::de::{self, Deserialize, Visitor};

use super::super::file::{ConfigFile, InterfaceSection, KeymixSection, PeerSection};
use super::super::qkd::QkdSection;
use super::*;

/// A deserializer that only records the field names a struct asks for.
struct FieldProbe(Cell<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for &FieldProbe {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
    let probe = FieldProbe(Cell::new(&[]));
    let _ = T::deserialize(&probe);
    let mut fields = probe.0.get().to_vec();
    fields.sort_unstable();
    fields
}

fn sorted(keys: &[&'static str]) -> Vec<&'static str> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys
}

#[test]
fn the_key_lists_are_the_config_structs_fields() {
    assert_eq!(
        fields::<ConfigFile>(),
        ["interface", "keymix", "peer", "qkd"]
    );
    assert_eq!(fields::<InterfaceSection>(), sorted(INTERFACE_KEYS));
    assert_eq!(fields::<KeymixSection>(), sorted(KEYMIX_KEYS));
    assert_eq!(fields::<QkdSection>(), sorted(QKD_KEYS));
    assert_eq!(fields::<PeerSection>(), sorted(PEER_KEYS));
}

/// Every key has its own entry in trident.toml(5) (`.B key` under its table's section).
#[test]
fn every_key_is_in_the_manual_page() {
    let page = crate::man::TRIDENT_TOML_5;
    for (section, keys) in [
        ("[interface]", INTERFACE_KEYS),
        ("[keymix]", KEYMIX_KEYS),
        ("[qkd]", QKD_KEYS),
        ("[[peer]]", PEER_KEYS),
    ] {
        let start = page
            .find(&format!(".SH \"{section}"))
            .unwrap_or_else(|| panic!("no section {section}"));
        let rest = &page[start + 4..];
        let body = &rest[..rest.find("\n.SH ").unwrap_or(rest.len())];
        for key in keys {
            let entry = format!("\n.B {key}\n");
            assert!(
                body.contains(&entry),
                "{section} {key} is not in trident.toml(5)"
            );
        }
    }
}

#[test]
fn rendering_fills_in_defaults_and_makes_paths_absolute() {
    let text = "[interface]\nname = \"trA\"\nprivate_key_file = \"a.key\"\nlisten_port = 51820\n\
                [[peer]]\npublic_key = \"x\"\nbootstrap_psk_file = \"ab.psk\"\n";
    let src = Source {
        file: Path::new("/etc/trident/a.toml"),
        text,
    };
    let effective = Effective {
        mtu: 1420,
        state_dir: Path::new("/var/lib/trident/trA"),
        epoch_secs: 120,
        reject_after_secs: 180,
        versions: (keymix::Version::V1, keymix::Version::V2),
        policy: keymix::QkdPolicy::Off,
        keylog_file: None,
    };
    let shown = render(&src, &effective, false);
    for line in [
        "private_key_file = \"/etc/trident/a.key\"",
        "mtu = 1420",
        "min_version = 1",
        "max_version = 2",
        "state_dir = \"/var/lib/trident/trA\"",
        "epoch_secs = 120",
        "qkd = \"off\"",
        "bootstrap_psk_file = \"/etc/trident/ab.psk\"",
    ] {
        assert!(shown.contains(line), "{line} missing in:\n{shown}");
    }
    assert!(shown.find("[interface]") < shown.find("[keymix]"));
    assert!(shown.find("[keymix]") < shown.find("[[peer]]"));
    // What it prints is a config again.
    assert!(toml::from_str::<Table>(&shown).is_ok(), "{shown}");
}
