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
            },
            rx,
        )
    }

    pub fn submit(&self, request: KmeRequest) {
        let KmeRequest { id, kind, .. } = request;
        let Some(source) = self.source.clone() else {
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
        self.runtime.spawn(async move {
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
            let _ = results.send((id, result));
        });
    }
}
