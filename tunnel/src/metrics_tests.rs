//! Rendering and routing of the metrics endpoint, checked on the exact OpenMetrics text.

use super::*;
use crate::status::{PeerReport, SourcesReport};

#[test]
fn classic_text_names_counters_with_total() {
    let om = "# HELP x_dropped Drops.\n# TYPE x_dropped counter\nx_dropped_total 4\n\
              # HELP x_epoch Epoch.\n# TYPE x_epoch gauge\nx_epoch 7\n# EOF\n";
    assert_eq!(
        classic_text(om),
        "# HELP x_dropped_total Drops.\n# TYPE x_dropped_total counter\nx_dropped_total 4\n\
         # HELP x_epoch Epoch.\n# TYPE x_epoch gauge\nx_epoch 7\n"
    );
    assert!(accepts_openmetrics(
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
    ));
    assert!(!accepts_openmetrics(
        b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
    ));
}

#[test]
fn requests_are_routed() {
    assert_eq!(
        route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        Route::Metrics
    );
    assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
    assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
    assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
    assert_eq!(route(b"GET /metrics\r\n"), Route::Bad);
    assert_eq!(route(&[0xff, 0xfe, b'\n']), Route::Bad);
    assert_eq!(route(b""), Route::Bad);
}

pub(crate) fn snapshot() -> Snapshot {
    let peer = PeerReport {
        public_key: "cGVlcg==".into(),
        endpoint: None,
        state: "up".into(),
        epoch: Some(7),
        epoch_age_secs: Some(3),
        sources: SourcesReport {
            x25519: true,
            mlkem: true,
            qkd: false,
        },
        qkd_key_id: None,
        last_handshake_secs: None,
        rx_bytes: 100,
        tx_bytes: 200,
        last_kme_error: None,
        keymix_exchanges: 7,
        allowed_ips: Vec::new(),
        persistent_keepalive: None,
        tunnel_epochs: vec![7],
        qkd_policy: "off".into(),
        auth: None,
        reason: None,
        hint: None,
        unverified: 0,
        last_unverified: None,
        static_only_reset: false,
        psk_rotation: false,
        warning: None,
        chain_epoch: 7,
        classic: false,
        installed_psk: None,
        version: Some(2),
        pinned_version: Some(2),
    };
    let mut dropped = std::collections::BTreeMap::new();
    dropped.insert("no_route".to_owned(), 4);
    Snapshot {
        status: InterfaceStatus {
            interface: "trdA".into(),
            public_key: String::new(),
            listen_port: 51820,
            peers: vec![peer],
            dropped,
            dropped_total: 4,
            keylog: None,
            data_plane: "built-in".into(),
            wireguard: None,
            qkd_protocol: Some("skip".into()),
        },
        packets: vec![(5, 6)],
    }
}

#[test]
fn render_has_every_family() {
    let shared = Shared::default();
    shared.observe_exchange(Duration::from_millis(12));
    shared.kme_request("enc_keys", "skip");
    shared.kme_error("enc_keys", "skip", "transport");
    let text = render(&shared, &snapshot());
    for want in [
        "trident_peer_rx_bytes_total{interface=\"trdA\",peer=\"cGVlcg==\"} 100",
        "trident_peer_tx_packets_total{interface=\"trdA\",peer=\"cGVlcg==\"} 5",
        "trident_peer_epoch{interface=\"trdA\",peer=\"cGVlcg==\"} 7",
        "trident_peer_epoch_age_seconds{interface=\"trdA\",peer=\"cGVlcg==\"} 3",
        "state=\"up\"} 1",
        "state=\"blocked\"} 0",
        "source=\"qkd\"} 0",
        "trident_dropped_total{interface=\"trdA\",reason=\"no_route\"} 4",
        "trident_peers{interface=\"trdA\"} 1",
        "trident_keymix_exchange_duration_seconds_count{interface=\"trdA\"} 1",
        "trident_kme_requests_total{interface=\"trdA\",kind=\"enc_keys\",protocol=\"skip\"} 1",
        "trident_kme_errors_total{interface=\"trdA\",kind=\"enc_keys\",protocol=\"skip\",error=\"transport\"} 1",
        "# EOF",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    // Every family carries the interface, so scrapes of several interfaces never mix.
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            sample.contains("{interface=\"trdA\""),
            "unlabelled sample {sample}"
        );
    }
}
