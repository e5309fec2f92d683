//! Where logs go and how they look (issue 11):
//!
//! * under systemd (`JOURNAL_STREAM` names our stderr), straight to the journal with the
//!   event's fields (`PEER=`, `EPOCH=`, `SOURCES=` …) so `journalctl -u trident@site-a
//!   EPOCH=7` works; if the journal socket cannot be reached, plain text without colour;
//! * otherwise text on stderr, coloured only when stderr is a terminal and `NO_COLOR` is
//!   not set (<https://no-color.org>), so a file or a pipe never gets escape codes.
//!
//! The level is `--log-level` if given, else `RUST_LOG`, else `info`.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The filter: an explicit `--log-level` (any `RUST_LOG` directive) wins over the env.
pub fn filter(log_level: Option<&str>) -> Result<EnvFilter> {
    match log_level {
        Some(level) => EnvFilter::try_new(level).with_context(|| {
            format!("--log-level {level:?}: expected error, warn, info, debug, trace or RUST_LOG directives")
        }),
        None => Ok(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// Colour only for a person at a terminal who did not ask for none.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for the stream it connected to stderr; a child
/// whose stderr went elsewhere (a shell redirect) inherits the variable, so it must match.
pub fn journal_is_stderr(journal_stream: Option<&OsStr>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some((dev, ino))) = (journal_stream.and_then(OsStr::to_str), stderr) else {
        return false;
    };
    value.split_once(':').is_some_and(|(d, i)| {
        d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
    })
}

fn stderr_identity() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Text lines on `writer`; `ansi` decides the colour escapes.
pub fn text_layer<W>(writer: W, ansi: bool) -> impl Layer<Registry> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(log_level: Option<&str>) -> Result<()> {
    let filter = filter(log_level)?;
    let journal = journal_is_stderr(
        std::env::var_os("JOURNAL_STREAM").as_deref(),
        stderr_identity(),
    );
    if journal {
        match tracing_journald::layer() {
            Ok(layer) => {
                // Field names as written (PEER=, EPOCH=), not the default F_PEER=.
                let layer = layer.with_field_prefix(None);
                Registry::default().with(layer.with_filter(filter)).init();
                return Ok(());
            }
            Err(e) => eprintln!("trident: journal socket unusable ({e}); logging to stderr"),
        }
    }
    let ansi = !journal
        && use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    Registry::default()
        .with(text_layer(std::io::stderr, ansi).with_filter(filter))
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::sync::{Arc, Mutex};

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn journal_stream_must_name_our_stderr() {
        let v = OsString::from("8:12345");
        assert!(journal_is_stderr(Some(&v), Some((8, 12345))));
        assert!(!journal_is_stderr(Some(&v), Some((8, 1))));
        assert!(!journal_is_stderr(None, Some((8, 12345))));
        assert!(!journal_is_stderr(
            Some(OsStr::new("junk")),
            Some((8, 12345))
        ));
    }

    #[test]
    fn a_bad_log_level_is_refused_and_a_good_one_accepted() {
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("trident=debug,tunnel=trace")).is_ok());
        assert!(filter(Some("trident=loud")).is_err());
    }

    /// What `init` does for a log file: the colour decision comes from the file (not a
    /// terminal), and the file gets no escape codes, fields included.
    #[test]
    fn logs_written_to_a_file_contain_no_escape_codes() {
        let path = std::env::temp_dir().join(format!("trident-log-{}.txt", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let ansi = use_colour(file.is_terminal(), None);
        let file = Arc::new(Mutex::new(file));
        let writer = move || FileWriter(Arc::clone(&file));
        let subscriber = Registry::default().with(text_layer(writer, ansi));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                peer = "ISVz4o7...",
                epoch = 7,
                sources = "x25519+mlkem",
                "PSK epoch installed"
            );
            tracing::warn!("a warning");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            text.contains("PSK epoch installed") && text.contains("epoch=7"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
    }

    struct FileWriter(Arc<Mutex<std::fs::File>>);

    impl std::io::Write for FileWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut file = self
                .0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            file.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
