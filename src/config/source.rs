//! Spans to line numbers and dotted key names, so every config error is one line naming
//! the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};

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

    fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(1, |before| before.matches('\n').count() + 1)
    }

    /// The dotted key at a span: the `[table]` (or `[[table]]`) above it plus the key
    /// written on its line.
    fn key_at(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self
            .text
            .get(offset..)
            .and_then(|rest| rest.find('\n'))
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text.get(line_start..line_end)?.trim();
        let table = before
            .get(..line_start)?
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        if line.starts_with('[') {
            return Some(
                line.trim_matches(|c| c == '[' || c == ']')
                    .trim()
                    .to_owned(),
            );
        }
        let key = line.split_once('=').map(|(k, _)| k.trim().to_owned())?;
        Some(match table {
            Some(t) => format!("{t}.{key}"),
            None => key,
        })
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
