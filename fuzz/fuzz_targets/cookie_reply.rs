//! `CookieReply::parse` on arbitrary bytes: it must never panic, and whatever it accepts must
//! serialise back to exactly the input. Tags are computed over the bytes while the state
//! machine acts on the parsed struct, so a non-canonical parse would let the two disagree.
#![no_main]

use keymix::message::CookieReply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = CookieReply::parse(data) {
        let bytes = m.to_bytes();
        assert_eq!(bytes, data, "{m:?} does not serialise back to its input");
        assert_eq!(CookieReply::parse(&bytes), Ok(m));
    }
});
