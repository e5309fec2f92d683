//! Parsing that reports every bad key, not only the first: serde stops at the first error,
//! so after each one the key (or table) it is about is blanked out and the text parsed
//! again. Blanking writes spaces over everything but newlines, so every later span, line
//! number and key name is the same as in the file. What parses in the end (the file minus
//! its bad keys) goes on to the semantic checks, which then report their own problems.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::file::ConfigFile;
use super::source::Source;
use super::ConfigError;

/// Enough for any real config; a file with more bad keys gets the first this many.
const MAX_PASSES: usize = 32;

/// The parsed config (of the text with its bad keys blanked, returned with it) and one
/// error per bad key. `None` when nothing parses: not TOML at all, or a required key or
/// table is missing (then nothing else can be checked).
pub(super) fn parse_all(src: &Source) -> (Option<(ConfigFile, String)>, Vec<ConfigError>) {
    let mut text = src.text.to_owned();
    let mut errors = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    for _ in 0..MAX_PASSES {
        let e = match toml::from_str::<ConfigFile>(&text) {
            Ok(file) => return (Some((file, text)), errors),
            Err(e) => e,
        };
        let here = Source {
            file: src.file,
            text: &text,
        };
        // "missing field `x`" for a key blanked earlier is that key's error again.
        let missing = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next());
        if missing.is_some_and(|m| blanked.iter().any(|k| k.rsplit('.').next() == Some(m))) {
            return (None, errors);
        }
        let error = here.parse_error(&e);
        let entry = e.span().and_then(|s| entry_at(&text, s.start));
        let wg_quick = super::validate::looks_like_wg_quick(&text);
        errors.push(error);
        let Some((range, key)) = entry.filter(|_| !wg_quick) else {
            return (None, errors);
        };
        text = blank(&text, &range);
        blanked.push(key);
    }
    (None, errors)
}

/// `text` with `range` overwritten by spaces, newlines kept.
fn blank(text: &str, range: &Range<usize>) -> String {
    text.char_indices()
        .map(|(i, c)| {
            if range.contains(&i) && c != '\n' {
                " ".repeat(c.len_utf8())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The whole `key = value` entry (or table, header and keys) that covers `offset`, and its
/// dotted key: what to blank so the rest of the file can be parsed.
fn entry_at(text: &str, offset: usize) -> Option<(Range<usize>, String)> {
    let doc = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find(doc.get_ref(), offset, &mut path)
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn find(
    table: &DeTable<'_>,
    offset: usize,
    path: &mut Vec<String>,
) -> Option<(Range<usize>, String)> {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        let inner = match value.get_ref() {
            DeValue::Table(t) => Some(find(t, offset, path)),
            DeValue::Array(items) => Some(items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(t) => find(t, offset, path).or_else(|| {
                    // An element of an array of tables whose header is at `offset`.
                    covers(&item.span(), offset)
                        .then(|| (table_extent(t, item.span()), path.join(".")))
                }),
                _ => None,
            })),
            _ => None,
        };
        if let Some(Some(found)) = inner {
            return Some(found);
        }
        if covers(&key.span(), offset) || covers(&value.span(), offset) {
            let range = match value.get_ref() {
                DeValue::Table(t) => table_extent(t, value.span()),
                _ => key.span().start..value.span().end,
            };
            return Some((range, path.join(".")));
        }
        path.pop();
    }
    None
}

/// A table's header and all its keys: a table's own span is its header only.
fn table_extent(table: &DeTable<'_>, header: Range<usize>) -> Range<usize> {
    let end = table
        .iter()
        .map(|(k, v)| {
            let nested = match v.get_ref() {
                DeValue::Table(t) => table_extent(t, v.span()).end,
                _ => 0,
            };
            k.span().end.max(v.span().end).max(nested)
        })
        .fold(header.end, usize::max);
    header.start.min(end)..end
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn errors(text: &str) -> (bool, Vec<String>) {
        let src = Source {
            file: Path::new("t.toml"),
            text,
        };
        let (parsed, errors) = parse_all(&src);
        (
            parsed.is_some(),
            errors.iter().map(ToString::to_string).collect(),
        )
    }

    const BASE: &str = "[interface]\nname = \"a\"\nprivate_key_file = \"k\"\nlisten_port = 1\n";

    #[test]
    fn every_unknown_key_and_bad_value_is_reported() {
        let text = format!(
            "{BASE}colour = 1\nmtu = \"big\"\n\n[keymix]\nepoch_secs = \"x\"\n\n[[peer]]\n\
             public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\nsize = 3\n"
        );
        let (parsed, errors) = errors(&text);
        assert!(parsed, "{errors:?}");
        assert_eq!(errors.len(), 4, "{errors:?}");
        for (line, key) in [
            (5, "interface.colour"),
            (6, "interface.mtu"),
            (9, "keymix.epoch_secs"),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(&format!("line {line}")) && e.contains(key)),
                "{line} {key}: {errors:?}"
            );
        }
        assert!(errors.iter().any(|e| e.contains("line 13")), "{errors:?}");
    }

    #[test]
    fn a_blanked_required_key_is_not_reported_twice() {
        let text = BASE.replace("listen_port = 1", "listen_port = \"many\"");
        let (parsed, errors) = errors(&text);
        assert!(!parsed);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("line 4"), "{errors:?}");
    }

    #[test]
    fn an_unknown_table_is_blanked_with_its_keys() {
        let text = format!("{BASE}\n[extra]\na = 1\nb = 2\n");
        let (parsed, errors) = errors(&text);
        assert!(parsed, "{errors:?}");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn text_that_is_not_toml_is_one_error() {
        let (parsed, errors) = errors("[interface\nname = 1\n");
        assert!(!parsed);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn blanking_keeps_offsets_and_lines() {
        let text = "a = \"é\"\nb = 1\n";
        let out = blank(text, &(0..9));
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), 2);
        assert!(out.ends_with("b = 1\n"));
    }
}
