//! Reading an HTTP body with a size cap into a buffer that is wiped on drop (bodies carry keys).

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Body;
use zeroize::Zeroizing;

/// The largest ETSI 014 body we read: a full key container of 128 keys of 1024 bytes in base64
/// is about 200 KiB, so 1 MiB leaves room for extensions without inviting memory exhaustion.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("body read failed: {0}")]
    Read(String),
}

/// Collect `body`, failing as soon as it passes `limit` bytes.
pub async fn read_limited<B>(mut body: B, limit: usize) -> Result<Zeroizing<Vec<u8>>, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    // Content-Length, when sent, lets us allocate once; it is only a hint, hence the cap.
    let hint = usize::try_from(body.size_hint().lower()).unwrap_or(limit);
    let mut out = Zeroizing::new(Vec::with_capacity(hint.min(limit)));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            let needed = out.len().saturating_add(data.len());
            if needed > limit {
                return Err(BodyError::TooLarge(limit));
            }
            if needed > out.capacity() {
                // Grow by hand: Vec's own reallocation would free the old buffer unwiped.
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    needed.max(out.len().saturating_mul(2)).min(limit),
                ));
                bigger.extend_from_slice(&out);
                out = bigger;
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
