//! Spans to line numbers and dotted key names, so every config error is one line naming
//! the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// Turns spans into line numbers and dotted key names for messages.
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// Relative paths in a config file are relative to the file's directory, so a config
    /// directory works wherever it is and whatever the working directory of `trident up`.
    pub(super) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_owned();
        }
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// The 1-based line of a byte offset.
    pub(super) fn line_at(&self, offset: usize) -> usize {
        self.line_of(offset)
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(1, |before| before.matches('\n').count() + 1)
    }

    /// The dotted key at a byte offset, from toml's own parse tree: the innermost key
    /// whose name or value covers the offset (`interface.colour`, `peer.allowed_ips`; an
    /// element of `[[peer]]` is named `peer`). None when the text does not parse as TOML
    /// at all: then the error's line is all there is to name.
    fn key_at(&self, offset: usize) -> Option<String> {
        let doc = DeTable::parse(self.text).ok()?;
        let mut path = Vec::new();
        key_path(doc.get_ref(), offset, &mut path).then(|| path.join("."))
    }

    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let known = span.filter(|s| !(s.start == 0 && s.end == 0));
        ConfigError {
            file: self.file.to_owned(),
            line: known.as_ref().map(|s| self.line_of(s.start)),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    pub(super) fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut span = e.span();
        let mut message = e.message().trim().to_owned();
        let key = span.as_ref().and_then(|s| self.key_at(s.start));
        if super::validate::looks_like_wg_quick(self.text) {
            message = super::validate::WG_QUICK_HINT.to_owned();
        } else if let (Some(s), Some(k)) = (&span, &key) {
            // Inside a multi-line array: the line of the bad element, not of the array.
            span = super::validate::element_span(self.text, s, k).or(span);
        }
        // serde says "unknown field `x`, expected ..." without the table; the key names it.
        if message.starts_with("missing field") {
            if let Some(table) = span.as_ref().and_then(|s| self.key_at(s.start)) {
                message = format!("{message} in [{}]", table.split('.').next().unwrap_or(""));
            }
        }
        ConfigError {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.line_of(s.start)),
            key,
            message,
        }
    }
}

/// Appends to `path` the keys leading to `offset` and says whether it found one. A table's
/// own span is only its `[header]`, so a table is searched whether or not it covers the
/// offset; the keys of a table (or of an array of tables) are its children's names.
fn key_path(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    let covers = |span: Range<usize>| span.start <= offset && offset < span.end.max(span.start + 1);
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if covers(key.span()) || covers(value.span()) {
            // The header of a table, or a key = value line: deeper keys may still match.
            let _ = descend(value.get_ref(), offset, path);
            return true;
        }
        if descend(value.get_ref(), offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// Searches the tables inside a value: a table, or the tables of an array of tables.
fn descend(value: &DeValue<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    match value {
        DeValue::Table(inner) => key_path(inner, offset, path),
        DeValue::Array(items) => items.iter().any(|item| match item.get_ref() {
            DeValue::Table(inner) => key_path(inner, offset, path),
            _ => false,
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str, needle: &str) -> Option<String> {
        let src = Source {
            file: Path::new("t.toml"),
            text,
        };
        src.key_at(text.find(needle)?)
    }

    #[test]
    fn keys_are_named_from_the_parse_tree() {
        let text = "top = 1\n[interface]\nname = \"a\"\n\n[[peer]]\npublic_key = \"x\"\n\n\
                    [[peer]]\nallowed_ips = [\n \"10.0.0.1/32\",\n \"bad\"]\nq = { a = 1, b = 2 }\n";
        assert_eq!(key(text, "1\n[").as_deref(), Some("top"));
        assert_eq!(key(text, "[interface]").as_deref(), Some("interface"));
        assert_eq!(key(text, "\"a\"").as_deref(), Some("interface.name"));
        assert_eq!(key(text, "public_key").as_deref(), Some("peer.public_key"));
        assert_eq!(key(text, "\"bad\"").as_deref(), Some("peer.allowed_ips"));
        assert_eq!(key(text, "b = 2").as_deref(), Some("peer.q.b"));
    }

    #[test]
    fn text_that_is_not_toml_names_no_key() {
        assert_eq!(key("[interface\nname = 1\n", "name"), None);
    }
}
