//! keymix chain states persisted off the packet thread, in group commits.
//!
//! keymix hands out `Event::PersistState` and requires the state on disk before any later
//! event is acted on or datagram sent: a Resp, Confirm or Init commits the peer to it, and an
//! `EpochKey` uses it. Written on the packet thread, each state cost a sync of the file and
//! of its directory there (about 10 ms on a busy virtual disk), three times per peer and
//! epoch: a hub with hundreds of peers stalled its traffic for seconds and its boot storm for
//! minutes. Here the packet loop gives the states to a writer on the caller's runtime (its
//! blocking pool) and holds back, in order, whatever keymix handed out after them until the
//! writer reports them durable ([`ChainWriter::written`]). States that arrive while a batch
//! is being written form the next batch, so under load one wait for the disk covers many.

use std::collections::VecDeque;

use keymix::{ChainState, Event, PeerId, Transmit};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::chain_store::{display_chain, ChainStore};
use crate::control::ControlReply;

/// keymix output that must wait until the states handed out before it are on disk.
pub enum Held {
    Event(Event),
    Transmit(Transmit),
    /// The answer to an operator's `trident reset`: it says the chain is reset, which is
    /// true once the reset state is durable (a crash before would bring the old chain back).
    Reply(oneshot::Sender<ControlReply>, ControlReply),
}

/// A batch is on disk (but for the states in `failed`, with the reason).
pub struct Written {
    generation: u64,
    pub failed: Vec<(PeerId, String)>,
}

pub struct ChainWriter {
    store: Option<ChainStore>,
    runtime: Handle,
    done: mpsc::UnboundedSender<Written>,
    /// States of the next batch, in keymix's order (a later state of a peer is renamed over
    /// an earlier one within the batch).
    queued: Vec<(PeerId, Box<ChainState>)>,
    writing: bool,
    /// The generation the next batch gets; batches are written one after another.
    next: u64,
    /// The newest generation on disk.
    durable: u64,
    /// The generation output handed out now must wait for.
    barrier: u64,
    held: VecDeque<(u64, Held)>,
}

impl ChainWriter {
    /// `store`: the state directory (`None`: nothing is persisted, nothing waits). Batches
    /// are written on `runtime`'s blocking pool and reported on the returned channel.
    pub fn new(
        store: Option<ChainStore>,
        runtime: Handle,
    ) -> (Self, mpsc::UnboundedReceiver<Written>) {
        let (done, rx) = mpsc::unbounded_channel();
        let writer = Self {
            store,
            runtime,
            done,
            queued: Vec::new(),
            writing: false,
            next: 1,
            durable: 0,
            barrier: 0,
            held: VecDeque::new(),
        };
        (writer, rx)
    }

    pub fn store(&self) -> Option<&ChainStore> {
        self.store.as_ref()
    }

    /// A `PersistState`: written with the next batch; what keymix hands out from now on
    /// waits for that batch.
    pub fn persist(&mut self, peer: PeerId, state: Box<ChainState>) {
        if self.store.is_none() {
            return;
        }
        self.queued.push((peer, state));
        self.barrier = self.next;
    }

    /// `item` back if it may be acted on now; `None` if it is held until the states handed
    /// out before it are on disk ([`Self::written`] returns it then).
    pub fn pass(&mut self, item: Held) -> Option<Held> {
        if self.barrier > self.durable {
            self.held.push_back((self.barrier, item));
            None
        } else {
            Some(item)
        }
    }

    /// Starts writing the queued states, unless a batch is being written (they go next).
    pub fn flush(&mut self) {
        if self.writing || self.queued.is_empty() {
            return;
        }
        let Some(store) = self.store.clone() else {
            return;
        };
        let batch = std::mem::take(&mut self.queued);
        let generation = self.next;
        self.next += 1;
        self.writing = true;
        let done = self.done.clone();
        // Through a task: spawn_blocking may start a thread in the calling thread, and the
        // packet thread may not (its seccomp filter); a worker of the runtime may.
        self.runtime.spawn(async move {
            let peers: Vec<PeerId> = batch.iter().map(|(p, _)| *p).collect();
            let started = std::time::Instant::now();
            let failed = match tokio::task::spawn_blocking(move || write(&store, &batch)).await {
                Ok(failed) => failed,
                Err(e) => peers.iter().map(|p| (*p, e.to_string())).collect(),
            };
            // What a slow disk costs the exchanges (each waits for its batch).
            tracing::debug!(
                states = peers.len(),
                millis = started.elapsed().as_millis(),
                "chain states written"
            );
            let _ = done.send(Written { generation, failed });
        });
    }

    /// A batch is on disk: the held output that waited for it, in keymix's order. Starts
    /// the next batch.
    pub fn written(&mut self, w: &Written) -> Vec<Held> {
        self.durable = self.durable.max(w.generation);
        self.writing = false;
        let mut released = Vec::new();
        while self.held.front().is_some_and(|(g, _)| *g <= self.durable) {
            if let Some((_, item)) = self.held.pop_front() {
                released.push(item);
            }
        }
        self.flush();
        released
    }
}

fn write(store: &ChainStore, batch: &[(PeerId, Box<ChainState>)]) -> Vec<(PeerId, String)> {
    let states: Vec<&ChainState> = batch.iter().map(|(_, s)| &**s).collect();
    store
        .save_batch(&states)
        .into_iter()
        .zip(batch)
        .filter_map(|(r, (peer, _))| r.err().map(|e| (*peer, display_chain(&e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use keymix::Destination;

    use super::*;

    fn transmit(tag: u8) -> Held {
        Held::Transmit(Transmit {
            destination: Destination::Peer(0),
            payload: vec![tag],
        })
    }

    fn tags(items: &[Held]) -> Vec<u8> {
        items
            .iter()
            .map(|h| match h {
                Held::Transmit(t) => t.payload.first().copied().unwrap_or(0),
                Held::Event(_) | Held::Reply(..) => 0,
            })
            .collect()
    }

    fn state(peer: u8, epoch: u64) -> Box<ChainState> {
        let mut s = ChainState::empty([1; 32], [peer; 32]);
        s.epoch = epoch;
        Box::new(s)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn output_waits_for_the_states_before_it_and_batches_form_while_writing() {
        let dir = std::env::temp_dir().join(format!("trident-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        let (mut w, mut done) = ChainWriter::new(Some(store.clone()), Handle::current());
        // Nothing persisted yet: output passes.
        assert!(w.pass(transmit(1)).is_some());
        // A state, then a Resp: the Resp waits for the state.
        w.persist(0, state(2, 1));
        assert!(w.pass(transmit(2)).is_none());
        w.flush();
        // While batch 1 is written, two more states and output after each.
        w.persist(1, state(3, 1));
        assert!(w.pass(transmit(3)).is_none());
        w.persist(0, state(2, 2));
        assert!(w.pass(transmit(4)).is_none());
        w.flush(); // batch 1 still being written: nothing starts
        let first = done.recv().await.unwrap();
        assert!(first.failed.is_empty());
        assert_eq!(
            tags(&w.written(&first)),
            vec![2],
            "only what waited for batch 1"
        );
        let second = done.recv().await.unwrap();
        assert_eq!(tags(&w.written(&second)), vec![3, 4]);
        assert!(
            w.pass(transmit(5)).is_some(),
            "all on disk: output passes again"
        );
        // The later state of peer 0 is the one on disk.
        let back = store.load(&[1; 32], &[2; 32]).unwrap().unwrap();
        assert_eq!(back.epoch, 2);
        assert_eq!(store.load(&[1; 32], &[3; 32]).unwrap().unwrap().epoch, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_write_is_reported_and_releases_the_output() {
        let dir = std::env::temp_dir().join(format!("trident-writer-f-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        // Others may write the directory: every write is refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (mut w, mut done) = ChainWriter::new(Some(store), Handle::current());
        w.persist(4, state(2, 1));
        assert!(w.pass(transmit(1)).is_none());
        w.flush();
        let written = done.recv().await.unwrap();
        assert_eq!(written.failed.len(), 1);
        assert_eq!(written.failed.first().map(|f| f.0), Some(4));
        assert_eq!(tags(&w.written(&written)), vec![1]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The packet thread runs under its seccomp filter, which refuses new threads: handing a
    /// batch over must not start one there (the runtime's workers write it).
    #[test]
    fn a_confined_packet_thread_hands_batches_to_the_runtime() {
        let dir = std::env::temp_dir().join(format!("trident-writer-c-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (mut w, mut done) = ChainWriter::new(Some(store.clone()), rt.handle().clone());
        let released = std::thread::spawn(move || {
            crate::privileges::confine_packet_thread();
            w.persist(0, state(2, 7));
            assert!(w.pass(transmit(1)).is_none());
            w.flush();
            let written = done.blocking_recv().unwrap();
            assert!(written.failed.is_empty(), "{:?}", written.failed);
            tags(&w.written(&written))
        })
        .join()
        .unwrap();
        assert_eq!(released, vec![1]);
        assert_eq!(store.load(&[1; 32], &[2; 32]).unwrap().unwrap().epoch, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `trident reset` says the chain is reset: not before the reset state is durable.
    #[tokio::test(flavor = "current_thread")]
    async fn a_reset_answer_waits_for_the_reset_state() {
        let dir = std::env::temp_dir().join(format!("trident-writer-r-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        let (mut w, mut done) = ChainWriter::new(Some(store), Handle::current());
        let (reply, mut answer) = oneshot::channel();
        w.persist(0, state(2, 0));
        assert!(w
            .pass(Held::Reply(reply, ControlReply::ok("reset")))
            .is_none());
        w.flush();
        assert!(answer.try_recv().is_err(), "no answer before the write");
        let written = done.recv().await.unwrap();
        let released = w.written(&written);
        assert!(matches!(released.as_slice(), [Held::Reply(..)]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_state_directory_nothing_waits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut w, _done) = ChainWriter::new(None, rt.handle().clone());
        w.persist(0, state(2, 1));
        assert!(w.pass(transmit(1)).is_some());
    }
}
