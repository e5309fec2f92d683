//! Standard output that a closed pipe does not turn into a panic: `trident status | head`
//! ends quietly with exit 0, as `wg show | head` does, instead of Rust's `println!` panic
//! (exit 101) on EPIPE.

use std::io::{ErrorKind, Write};

use anyhow::{Context, Result};

/// Writes `text` to stdout; a reader that went away (EPIPE) is not an error.
pub fn print(text: &str) -> Result<()> {
    write_to(&mut std::io::stdout().lock(), text.as_bytes())
}

/// [`print`] for bytes (the man page, completions).
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    write_to(&mut std::io::stdout().lock(), bytes)
}

fn write_to(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        assert!(write_to(&mut Closed, b"status\n").is_ok());
        let mut buf = Vec::new();
        write_to(&mut buf, b"x").unwrap();
        assert_eq!(buf, b"x");
    }
}
