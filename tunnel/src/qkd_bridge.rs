//! Answers keymix's KME requests through the configured QKD key source, off the packet
//! path: each request runs in its own task and its result comes back over a channel.

use std::sync::Arc;

use keymix::qkd::{QkdError, QkdKey, QkdKeySource};
use keymix::{KmeRequest, KmeRequestId, KmeRequestKind};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

pub type KmeResult = (KmeRequestId, Result<Vec<QkdKey>, QkdError>);

pub struct QkdBridge {
    source: Option<Arc<dyn QkdKeySource>>,
    results: mpsc::UnboundedSender<KmeResult>,
    /// Where the KME requests run: the caller's runtime, not the packet thread's.
    runtime: Handle,
    /// Counts requests and errors by kind (`[interface] metrics_listen`).
    metrics: Option<Arc<crate::metrics::Shared>>,
}

impl QkdBridge {
    pub fn new(
        source: Option<Arc<dyn QkdKeySource>>,
        runtime: Handle,
    ) -> (Self, mpsc::UnboundedReceiver<KmeResult>) {
        let (results, rx) = mpsc::unbounded_channel();
        (
            Self {
                source,
                results,
                runtime,
                metrics: None,
            },
            rx,
        )
    }

    pub fn set_metrics(&mut self, metrics: Option<Arc<crate::metrics::Shared>>) {
        self.metrics = metrics;
    }

    /// The key source's protocol (etsi014, skip), for status; None without a source.
    pub fn protocol(&self) -> Option<&'static str> {
        self.source.as_ref().map(|s| s.protocol())
    }

    pub fn submit(&self, request: KmeRequest) {
        let KmeRequest { id, kind, .. } = request;
        let kind_name = match &kind {
            KmeRequestKind::EncKeys { .. } => "enc_keys",
            KmeRequestKind::DecKeys { .. } => "dec_keys",
        };
        let metrics = self.metrics.clone();
        let protocol = self.protocol().unwrap_or("none");
        if let Some(m) = &metrics {
            m.kme_request(kind_name, protocol);
        }
        let Some(source) = self.source.clone() else {
            if let Some(m) = &metrics {
                m.kme_error(kind_name, protocol, "unavailable");
            }
            // keymix turns this into "degraded" (preferred) or "blocked" (required).
            let _ = self.results.send((
                id,
                Err(QkdError::Unavailable(
                    "no KME configured for this interface".to_owned(),
                )),
            ));
            return;
        };
        let results = self.results.clone();
        self.runtime
            .spawn(tracing::Instrument::in_current_span(async move {
                let result = match kind {
                    KmeRequestKind::EncKeys {
                        slave_sae_id,
                        number,
                        size_bits,
                    } => source.enc_keys(&slave_sae_id, number, size_bits).await,
                    KmeRequestKind::DecKeys {
                        master_sae_id,
                        key_ids,
                    } => source.dec_keys(&master_sae_id, &key_ids).await,
                };
                if let (Some(m), Err(e)) = (&metrics, &result) {
                    m.kme_error(kind_name, protocol, error_kind(e));
                }
                let _ = results.send((id, result));
            }));
    }
}

/// A metrics label for each kind of KME failure.
fn error_kind(e: &QkdError) -> &'static str {
    match e {
        QkdError::BadRequest(_) => "bad_request",
        QkdError::Unauthorized => "unauthorized",
        QkdError::Unavailable(_) => "unavailable",
        QkdError::UnexpectedStatus { .. } => "unexpected_status",
        QkdError::Transport(_) => "transport",
        QkdError::Malformed(_) => "malformed",
        QkdError::Timeout => "timeout",
    }
}
