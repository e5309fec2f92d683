//! Handing out new keys, the same for both APIs (ETSI 014 `enc_keys`, SKIP `GET /key`): bits
//! drawn from the pool, random keys with random IDs, pushed to the peer KME before the
//! caller sees them, so a master never holds a key its slave cannot get.

use zeroize::Zeroizing;

use super::api::Answer;
use super::keyid::new_key_id;
use super::link::{LinkKey, LinkPush};
use super::state::KmeState;
use crate::model::KeyMaterial;

/// `number` keys of `size` bits (already checked against the limits) for `master` to share
/// with `slave`; the answer to send instead when that fails.
pub async fn issue(
    state: &KmeState,
    master: &str,
    slave: &str,
    number: u32,
    size: u32,
) -> Result<Vec<LinkKey>, Answer> {
    let bits = u64::from(number) * u64::from(size);
    if !state.try_draw(bits) {
        return Err(Answer::error(
            503,
            &format!(
                "not enough key material: {number} keys of {size} bits requested, \
                 {} keys of {} bits stored",
                state.stored_key_count(),
                state.config.key_size
            ),
        ));
    }
    let keys = match fresh_keys(number, size) {
        Ok(keys) => keys,
        Err(e) => {
            state.give_back(bits);
            tracing::error!(error = %e, "random number generator failed");
            return Err(Answer::error(503, "key generation failed"));
        }
    };
    let push = LinkPush {
        master_SAE_ID: master.to_owned(),
        slave_SAE_ID: slave.to_owned(),
        keys,
    };
    if let Err(e) = state.link.push(&push).await {
        state.give_back(bits);
        tracing::warn!(error = %e, "key link to the peer KME failed");
        return Err(Answer::error(
            503,
            "the peer KME could not be reached over the key link",
        ));
    }
    Ok(push.keys)
}

fn fresh_keys(number: u32, size_bits: u32) -> Result<Vec<LinkKey>, getrandom::Error> {
    (0..number)
        .map(|_| {
            let mut key = Zeroizing::new(vec![0u8; (size_bits / 8) as usize]);
            getrandom::fill(&mut key)?;
            Ok(LinkKey {
                key_ID: new_key_id()?,
                key: KeyMaterial(key),
            })
        })
        .collect()
}
