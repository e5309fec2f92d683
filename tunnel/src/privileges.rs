//! Least privilege for `trident up` (README, "Privileges after setup").
//!
//! Capabilities, the bounding set and no-new-privileges are per *thread* in Linux and only
//! inherited by threads created later, so [`drop_to_net_admin`] must run while the process
//! is still single-threaded: before the tokio runtime exists. Everything `up` does needs
//! only CAP_NET_ADMIN (TUN device, `ip`, large socket buffers) once it runs as uid 0 on
//! root-owned files; CAP_NET_BIND_SERVICE is kept only for a listen port below 1024.
//!
//! The packet thread additionally confines itself with a seccomp filter once setup is done
//! ([`confine_packet_thread`]): only the system calls of its loop (socket and TUN I/O,
//! epoll, memory, the key log and state file writes) are allowed; anything else fails with
//! EPERM instead of killing the process, so a call missing from the list shows up as a
//! logged I/O error, never as an outage. `TRIDENT_SECCOMP_LOG=1` makes unlisted calls
//! succeed and be logged by the kernel (audit) instead, to find them.

use std::cell::Cell;
use std::collections::BTreeMap;

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "{0} threads are running; capabilities are per thread, so they must be dropped \
         before any thread starts"
    )]
    Threaded(usize),
    #[error(
        "trident up needs CAP_NET_ADMIN (TUN device, addresses, routes, WireGuard PSKs): run \
         it as root, or give it the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN; by \
         hand: setpriv --inh-caps=+net_admin --ambient-caps=+net_admin)"
    )]
    MissingNetAdmin,
    #[error("cannot {what}")]
    Caps {
        what: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("cannot set no-new-privileges")]
    NoNewPrivs(#[source] nix::Error),
    #[error("cannot build the seccomp filter")]
    Seccomp(#[source] seccompiler::Error),
    #[error("cannot build the seccomp filter")]
    SeccompBackend(#[source] seccompiler::BackendError),
}

thread_local! {
    static CONFINED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread runs under the packet-loop seccomp filter, where starting a program
/// (`ip`) is impossible.
pub fn is_confined() -> bool {
    CONFINED.with(Cell::get)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Keeps CAP_NET_ADMIN (and CAP_NET_BIND_SERVICE when `low_port` and held) in the
/// effective and permitted sets and in the bounding set, and sets no-new-privileges. Call
/// while the process has one thread.
///
/// As root, the inheritable and ambient sets are cleared (a root child such as `ip` gets
/// its capabilities from the root rule, capped by no-new-privileges). Without root (systemd
/// `User=` with AmbientCapabilities, or setpriv), CAP_NET_ADMIN stays inheritable and
/// ambient, the only way `ip` can inherit it; the bounding set is then left alone when
/// CAP_SETPCAP is missing (no-new-privileges already stops file capabilities).
pub fn drop_to_net_admin(low_port: bool) -> Result<(), PrivilegeError> {
    let n = threads();
    if n != 1 {
        return Err(PrivilegeError::Threaded(n));
    }
    let err = |what| move |source| PrivilegeError::Caps { what, source };
    let permitted = caps::read(None, CapSet::Permitted).map_err(err("read the permitted set"))?;
    if !permitted.contains(&Capability::CAP_NET_ADMIN) {
        return Err(PrivilegeError::MissingNetAdmin);
    }
    let mut keep = CapsHashSet::new();
    keep.insert(Capability::CAP_NET_ADMIN);
    if low_port && permitted.contains(&Capability::CAP_NET_BIND_SERVICE) {
        keep.insert(Capability::CAP_NET_BIND_SERVICE);
    }
    // The bounding set first: shrinking it needs CAP_SETPCAP, which goes below.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        let bounding = caps::read(None, CapSet::Bounding).map_err(err("read the bounding set"))?;
        for cap in bounding.difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(err("shrink the bounding set"))?;
        }
    }
    let ambient = caps::runtime::ambient_set_supported().is_ok();
    if ambient {
        caps::clear(None, CapSet::Ambient).map_err(err("clear the ambient set"))?;
    }
    let root = nix::unistd::geteuid().is_root();
    let mut inheritable = CapsHashSet::new();
    if !root {
        inheritable.insert(Capability::CAP_NET_ADMIN);
    }
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(err("set the inheritable set"))?;
    caps::set(None, CapSet::Effective, &keep).map_err(err("set the effective set"))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(err("set the permitted set"))?;
    if !root && ambient {
        caps::raise(None, CapSet::Ambient, Capability::CAP_NET_ADMIN)
            .map_err(err("keep CAP_NET_ADMIN ambient for `ip`"))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(PrivilegeError::NoNewPrivs)?;
    Ok(())
}

/// System calls of the packet loop on the current-thread runtime: TUN and UDP batches,
/// epoll and its waker, the control socket, key log and state file writes, the allocator,
/// thread exit. Names absent on an architecture are skipped by the `cfg`s.
fn allowed_syscalls() -> Vec<i64> {
    use nix::libc::*;
    let mut calls = vec![
        // Socket, TUN and file I/O.
        SYS_read,
        SYS_readv,
        SYS_write,
        SYS_writev,
        SYS_pread64,
        SYS_pwrite64,
        SYS_recvfrom,
        SYS_recvmsg,
        SYS_recvmmsg,
        SYS_sendto,
        SYS_sendmsg,
        SYS_sendmmsg,
        SYS_close,
        SYS_fcntl,
        SYS_ioctl,
        SYS_shutdown,
        SYS_getsockname,
        SYS_getpeername,
        SYS_getsockopt,
        SYS_setsockopt,
        SYS_accept4,
        // Readiness.
        SYS_epoll_pwait,
        SYS_epoll_ctl,
        SYS_ppoll,
        // State file replacement (secret_file::write_atomic) and the key log.
        SYS_openat,
        SYS_newfstatat,
        SYS_fstat,
        SYS_statx,
        SYS_lseek,
        SYS_fsync,
        SYS_fdatasync,
        SYS_renameat,
        SYS_renameat2,
        SYS_unlinkat,
        SYS_getrandom,
        // Memory, threads, time, signals.
        SYS_munmap,
        SYS_mremap,
        SYS_madvise,
        SYS_brk,
        SYS_futex,
        SYS_sched_yield,
        SYS_nanosleep,
        SYS_clock_nanosleep,
        SYS_clock_gettime,
        SYS_gettimeofday,
        SYS_getpid,
        SYS_gettid,
        // secret_file's ownership checks.
        SYS_geteuid,
        SYS_getuid,
        SYS_rt_sigreturn,
        SYS_rt_sigprocmask,
        SYS_sigaltstack,
        SYS_restart_syscall,
        SYS_exit,
        SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        SYS_epoll_wait,
        SYS_poll,
        SYS_rename,
        SYS_unlink,
        SYS_open,
        SYS_stat,
        SYS_lstat,
    ]);
    calls.push(SYS_epoll_pwait2);
    calls
}

/// `mmap` and `mprotect` only without PROT_EXEC: the loop never maps code.
fn no_exec_rule() -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let prot_exec = nix::libc::PROT_EXEC as u64;
    let cond = SeccompCondition::new(
        2,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(prot_exec),
        0,
    )?;
    Ok(vec![SeccompRule::new(vec![cond])?])
}

fn packet_filter(log_only: bool) -> Result<BpfProgram, PrivilegeError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = allowed_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    for nr in [nix::libc::SYS_mmap, nix::libc::SYS_mprotect] {
        rules.insert(nr, no_exec_rule().map_err(PrivilegeError::SeccompBackend)?);
    }
    let mismatch = if log_only {
        SeccompAction::Log
    } else {
        SeccompAction::Errno(nix::libc::EPERM as u32)
    };
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(PrivilegeError::SeccompBackend)?;
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch)
        .map_err(PrivilegeError::SeccompBackend)?;
    filter.try_into().map_err(PrivilegeError::SeccompBackend)
}

/// Installs the packet loop's seccomp filter on the calling thread (and so on any thread it
/// starts). A kernel without seccomp leaves the thread unconfined, with a warning: the
/// capability drop is the main control, the filter is depth.
pub fn confine_packet_thread() {
    let log_only = std::env::var_os("TRIDENT_SECCOMP_LOG").is_some_and(|v| v == "1");
    let result = packet_filter(log_only)
        .and_then(|prog| seccompiler::apply_filter(&prog).map_err(PrivilegeError::Seccomp));
    match result {
        Ok(()) => {
            CONFINED.with(|c| c.set(true));
            tracing::debug!(log_only, "packet thread confined by seccomp");
        }
        Err(e) => tracing::warn!("packet thread runs without a seccomp filter: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_architecture() {
        assert!(!packet_filter(false).unwrap().is_empty());
        assert!(!packet_filter(true).unwrap().is_empty());
    }

    /// On a thread of its own: the filter cannot be removed again.
    #[test]
    fn a_confined_thread_gets_eperm_for_unlisted_calls_and_keeps_working() {
        let joined = std::thread::spawn(|| {
            confine_packet_thread();
            assert!(is_confined());
            // Listed: memory, time, pipes' read/write via an already open fd.
            let v = vec![0u8; 1 << 20];
            let _ = std::time::Instant::now();
            // Unlisted: starting a program and creating a socket.
            let spawn = std::process::Command::new("/bin/true").status();
            let socket = std::net::UdpSocket::bind("127.0.0.1:0");
            (
                v.len(),
                spawn.map_err(|e| e.raw_os_error()),
                socket.map_err(|e| e.raw_os_error()),
            )
        })
        .join()
        .unwrap();
        assert_eq!(joined.0, 1 << 20);
        assert_eq!(joined.1.unwrap_err(), Some(nix::libc::EPERM));
        assert_eq!(joined.2.unwrap_err(), Some(nix::libc::EPERM));
        assert!(!is_confined(), "the flag is per thread");
    }

    /// What the loop does with files under the filter: append to the key log, replace the
    /// state file (temp file, fsync, rename, directory fsync).
    #[test]
    fn a_confined_thread_can_append_and_replace_secret_files() {
        use std::io::Write as _;
        let dir = std::env::temp_dir().join(format!("trident-privileges-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::secret_file::ensure_private_dir(&dir).unwrap();
        let (log, state) = (dir.join("keylog"), dir.join("state"));
        let mut file = crate::secret_file::open_append(&log).unwrap();
        let (log2, state2) = (log.clone(), state.clone());
        std::thread::spawn(move || {
            confine_packet_thread();
            assert!(is_confined());
            file.write_all(b"line\n").unwrap();
            crate::secret_file::write_atomic(&state2, b"one").unwrap();
            crate::secret_file::write_atomic(&state2, b"two").unwrap();
            crate::secret_file::open_append(&log2).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"line\n");
        assert_eq!(std::fs::read(&state).unwrap(), b"two");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dropping_capabilities_refuses_a_threaded_process() {
        // The test harness runs tests on threads: exactly the case that must be refused.
        match drop_to_net_admin(false) {
            Err(PrivilegeError::Threaded(n)) => assert!(n > 1),
            other => panic!("expected Threaded, got {other:?}"),
        }
    }
}
