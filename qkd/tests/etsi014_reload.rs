//! SIGHUP makes a running KME re-read `qber` even when the file's stamp did not change.
//! Alone in its own test binary because it signals the whole test process.

use std::path::Path;
use std::time::{Duration, Instant};

use qkd::sim::KmeConfig;

mod common;
use common::{pair, qber_of, sae_a, TempDir};

/// Rewrite `qber` keeping the file's size and modification time, so that only a SIGHUP can
/// reveal the change.
fn rewrite_qber_stealthily(path: &Path, qber: f64) {
    let before = std::fs::metadata(path).unwrap();
    let mut config = KmeConfig::load(path).unwrap();
    config.qber = Some(qber);
    config.save(path).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), before.len());
}

#[tokio::test]
async fn sighup_rereads_the_config() {
    let dir = TempDir::new("hup");
    let pair = pair(&dir, |a, _| {
        a.qber = Some(0.02);
    })
    .await;
    let f = &pair.files;
    let client = sae_a(&pair);
    assert_eq!(qber_of(&client.status("SAE_B").await.unwrap()), Some(0.02));

    rewrite_qber_stealthily(&f.config_a, 0.15);
    // Two poll periods: the watcher does not notice a file whose stamp is unchanged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(qber_of(&client.status("SAE_B").await.unwrap()), Some(0.02));

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client.status("SAE_B").await.unwrap();
        if qber_of(&status) == Some(0.15) {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP not honoured: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
