//! The simulator's key-rate model: binary entropy, BB84 secret fraction, and an eavesdropper
//! (a QBER above ~11 %) switched on at run time through the config file.

use std::path::Path;
use std::time::{Duration, Instant};

use keymix::qkd::{QkdError, QkdKeySource};
use qkd::model::Status;
use qkd::sim::{binary_entropy, effective_rate_bps, secret_fraction, KmeConfig};
use qkd::Etsi014Client;

mod common;
use common::{pair, qber_of, sae_a, TempDir, SAE_B};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn binary_entropy_values() {
    assert_eq!(binary_entropy(0.0), 0.0);
    assert_eq!(binary_entropy(1.0), 0.0);
    assert!(close(binary_entropy(0.5), 1.0));
    // h(0.25) = 0.25*2 + 0.75*log2(4/3)
    assert!(close(
        binary_entropy(0.25),
        0.5 + 0.75 * (4.0f64 / 3.0).log2()
    ));
    for p in [0.01, 0.1, 0.2, 0.3, 0.45] {
        assert!(
            close(binary_entropy(p), binary_entropy(1.0 - p)),
            "symmetry at {p}"
        );
    }
    assert!(binary_entropy(-0.1).is_nan());
    assert!(binary_entropy(1.1).is_nan());
    assert!(binary_entropy(f64::NAN).is_nan());
}

#[test]
fn secret_fraction_vanishes_near_eleven_percent() {
    assert!(close(secret_fraction(0.0), 1.0));
    let at_5 = secret_fraction(0.05);
    assert!((at_5 - (1.0 - 2.0 * binary_entropy(0.05))).abs() < 1e-12);
    assert!(at_5 > 0.4 && at_5 < 0.45, "{at_5}");
    assert!(secret_fraction(0.11) > 0.0 && secret_fraction(0.11) < 0.001);
    assert_eq!(secret_fraction(0.111), 0.0);
    assert_eq!(secret_fraction(0.12), 0.0);
    assert_eq!(secret_fraction(0.5), 0.0);
    assert_eq!(secret_fraction(0.9), 0.0, "not physical, not a bonus");
    assert_eq!(effective_rate_bps(10_000.0, Some(0.12)), 0.0);
    assert!(close(effective_rate_bps(10_000.0, Some(0.0)), 10_000.0));
    assert!(close(effective_rate_bps(10_000.0, None), 10_000.0));
    assert_eq!(effective_rate_bps(f64::INFINITY, None), 0.0);
}

fn set_qber(config_path: &Path, qber: f64) {
    let mut config = KmeConfig::load(config_path).unwrap();
    config.qber = Some(qber);
    config.save(config_path).unwrap();
}

/// Poll the status until `cond` holds (the KME polls its config every 500 ms).
async fn wait_for(client: &Etsi014Client, cond: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client.status(SAE_B).await.unwrap();
        if cond(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn no_key_at_qber_twelve_percent() {
    let dir = TempDir::new("qber12");
    let pair = pair(&dir, |a, b| {
        for c in [a, b] {
            c.initial_key_count = Some(0);
            c.key_rate_bps = 1_000_000.0;
            c.qber = Some(0.12);
        }
    })
    .await;
    let a = sae_a(&pair);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = a.status(SAE_B).await.unwrap();
    assert_eq!(status.stored_key_count, 0);
    let ext = status.status_extension.unwrap();
    assert_eq!(
        ext["trident_effective_key_rate_bps"],
        serde_json::json!(0.0)
    );
    assert!(matches!(
        a.enc_keys(SAE_B, 1, 256).await,
        Err(QkdError::Unavailable(_))
    ));
}

#[tokio::test]
async fn an_eavesdropper_at_run_time_stops_the_key_flow() {
    let dir = TempDir::new("eve");
    let pair = pair(&dir, |a, b| {
        for c in [a, b] {
            c.initial_key_count = Some(0);
            c.max_key_count = 50;
            c.key_rate_bps = 256.0 * 200.0; // 200 keys/s
            c.qber = Some(0.02);
        }
    })
    .await;
    let a = sae_a(&pair);

    // Keys accrue at 1 - 2 h(0.02) ~ 72 % of the raw rate.
    wait_for(&a, |s| s.stored_key_count >= 10).await;

    // Eve arrives: the QBER jumps past 11 % on the link (both KMEs' files).
    set_qber(&pair.files.config_a, 0.15);
    set_qber(&pair.files.config_b, 0.15);
    wait_for(&a, |s| qber_of(s) == Some(0.15)).await;

    // Use up what was distilled before; nothing new arrives.
    loop {
        let stored = a.status(SAE_B).await.unwrap().stored_key_count;
        if stored == 0 {
            break;
        }
        let n = u32::try_from(stored.min(128)).unwrap();
        a.enc_keys(SAE_B, n, 256).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.status(SAE_B).await.unwrap().stored_key_count, 0);
    assert!(matches!(
        a.enc_keys(SAE_B, 1, 256).await,
        Err(QkdError::Unavailable(_))
    ));

    // Eve leaves: keys flow again.
    set_qber(&pair.files.config_a, 0.01);
    wait_for(&a, |s| s.stored_key_count >= 1).await;
    a.enc_keys(SAE_B, 1, 256).await.unwrap();
}
