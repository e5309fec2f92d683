#!/usr/bin/python3
"""Summarises a `perf record -g` profile of one gateway process for bench/PROFILE.md:
  - the split by binary (kernel, the gateway's own code, libc);
  - self time by category (crypto, kernel network stack, copies, syscall entry, TUN,
    wakeups and context switches, allocation, runtime, boringtun, trident);
  - inclusive ("children") time of each syscall and of the kernel paths that matter
    (softirq network processing run inside the gateway's own syscalls, wakeups of the
    receiving process).
Used by scripts/bench.sh --profile.

Usage: bench_perf_categories.py PERF_DATA [LABEL]
"""

import re
import subprocess
import sys

LINE = re.compile(r"^\s*([0-9.]+)%\s+(?:([0-9.]+)%\s+)?(\S+)\s+\[([.k])\]\s+(.*)$")

# First match wins: (category, kernel symbol?, regex on the symbol).
RULES = [
    ("crypto (ChaCha20-Poly1305, BLAKE2s, X25519, ML-KEM)", None,
     r"chacha|poly1305|aead|blake2|x25519|curve25519|aes_|sha2|hkdf|ml_kem|keccak"),
    # With cpu-clock sampling (no PMU in this VM) a sample that falls in an irq-off region
    # is taken where interrupts are enabled again: the wakeup of another task
    # (try_to_wake_up under the runqueue lock) and the context switch itself show up here.
    ("kernel: wakeups + context switches (irq-off time, shown at irq enable)", True,
     r"_raw_spin_unlock_irqrestore|finish_task_switch|_raw_spin_unlock_irq\b|_raw_spin_unlock_bh"),
    ("kernel: copies to/from user", True,
     r"copy_user|copy_to_user|copy_from_user|_copy_to_iter|_copy_from_iter|copyin|copyout|"
     r"rep_movs|memcpy|memmove|csum_partial_copy|skb_copy_datagram|simple_copy_to_iter|check_object_size"),
    ("kernel: TUN driver", True, r"^tun_|tun_get_user|tun_put_user|tun_chr"),
    ("kernel: syscall entry/exit", True,
     r"entry_SYSCALL|syscall_exit|do_syscall|syscall_return|__x64_sys|__sys_|exit_to_user|"
     r"syscall_enter|fpregs|restore_fpregs|switch_fpu|fdget|fput|__fget"),
    ("kernel: perf's own tracing overhead", True, r"^perf_|perf_trace|perf_tp"),
    ("kernel: network stack (UDP/IP/veth/softirq, incl. the peer side's receive path)", True,
     r"udp|ip_|ip6|__ip|inet|sock|skb|tcp|veth|net_rx|napi|netif|__dev|dev_|neigh|nf_|"
     r"fib|dst_|process_backlog|softirq|gro|gso|icmp|rt_|csum|checksum|__netif|validate_xmit|"
     r"eth_|sk_|raw_v|packet_|qdisc"),
    ("kernel: scheduler, futex, epoll", True,
     r"schedule|futex|ep_poll|epoll|ep_|try_to_wake_up|wake_up|__wake|pick_next|enqueue|dequeue|"
     r"update_curr|ttwu|select_task|hrtimer|do_idle|cpuidle|default_idle|sched"),
    ("kernel: memory (slab, pages)", True, r"kmem|slab|kmalloc|kfree|page|__alloc|free_|mem_cgroup"),
    ("kernel: other", True, r"."),
    ("user: memcpy/memmove/memset", False, r"memcpy|memmove|memset|__memcpy|__memmove"),
    ("user: allocation (malloc/free)", False,
     r"malloc|free|realloc|calloc|_int_|alloc::|__rust_alloc|__rust_dealloc|cfree|tcache"),
    ("user: tokio/mio runtime, channels, locks, libc syscall stubs", False,
     r"tokio|mio::|parking_lot|crossbeam|futures|std::sync|std::thread|pthread|epoll|syscall|__libc|"
     r"_GI_|__GI_|sendto|recvfrom|sendmsg|recvmsg|__send|__recv|__read|__write|runtime|chan::|"
     r"channel|context::|sync::"),
    ("user: boringtun (noise, timers, packet parsing)", False, r"boringtun"),
    ("user: trident (tunnel, keymix, driver)", False, r"tunnel::|trident|keymix"),
    ("user: other", False, r"."),
]

# Inclusive time worth reporting, by symbol (regex) -> label.
INCLUSIVE = [
    (r"^entry_SYSCALL_64(_after_hwframe)?$", "all syscalls (kernel side)"),
    (r"^(__x64_sys|__sys)_sendto$", "sendto"),
    (r"^(__x64_sys|__sys)_sendmsg$", "sendmsg"),
    (r"^(__x64_sys|__sys)_sendmmsg$", "sendmmsg"),
    (r"^(__x64_sys|__sys)_recvfrom$", "recvfrom"),
    (r"^(__x64_sys|__sys)_recvmsg$", "recvmsg"),
    (r"^(__x64_sys|__sys)_recvmmsg$", "recvmmsg"),
    (r"^ksys_read$", "read (TUN)"),
    (r"^__x64_sys_readv$", "readv"),
    (r"^ksys_write$", "write (TUN)"),
    (r"^__x64_sys_writev$", "writev"),
    (r"^__x64_sys_epoll_wait$", "epoll_wait"),
    (r"^__x64_sys_epoll_pwait$", "epoll_pwait"),
    (r"^__x64_sys_futex$", "futex"),
    (r"^handle_softirqs$", "softirq network processing inside this process"),
    (r"^__udp_enqueue_schedule_skb$", "UDP enqueue at the receiving socket (incl. its wakeup)"),
    (r"^sock_def_readable$", "waking the reader of a socket"),
    (r"^try_to_wake_up$", "try_to_wake_up"),
    (r"^__schedule$", "__schedule (context switches)"),
    (r"^tun_get_user$", "tun_get_user (TUN write path)"),
    (r"^tun_do_read$", "tun_do_read (TUN read path)"),
    (r"^udp_sendmsg$", "udp_sendmsg"),
    (r"^veth_xmit$", "veth_xmit"),
    (r"chacha20_poly1305_seal|chacha20_poly1305_open", "ChaCha20-Poly1305 (largest single symbol)"),
    (r"Tunn::encapsulate", "boringtun Tunn::encapsulate (unreliable: no frame pointers in user space)"),
    (r"Tunn::decapsulate", "boringtun Tunn::decapsulate (same caveat)"),
]


def perf_report(data, *args):
    out = subprocess.run(
        ["perf", "report", "-i", data, "--stdio", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout


def classify(dso, kind, sym):
    kernel = kind == "k" or "kernel" in dso
    for name, want_kernel, rx in RULES:
        if want_kernel is not None and want_kernel != kernel:
            continue
        if re.search(rx, sym, re.IGNORECASE):
            return name
    return "kernel: other" if kernel else "user: other"


def main():
    data = sys.argv[1]
    total_samples = None
    head = perf_report(data, "--no-children", "--sort", "dso", "-g", "none")
    m = re.search(r"# Samples: (\S+)", head)
    if m:
        total_samples = m.group(1)
    label = sys.argv[2] if len(sys.argv) > 2 else data
    print(f"# {label}: {total_samples} cpu-clock samples")
    print("## by binary (self time)")
    for line in head.splitlines():
        mm = re.match(r"^\s*([0-9.]+)%\s+(.+)$", line)
        if mm and float(mm.group(1)) >= 0.1:
            print(f"{float(mm.group(1)):6.1f}%  {mm.group(2).strip()}")

    print("## by thread name (self time; tokio's block_on future runs on the main thread)")
    for line in perf_report(data, "--no-children", "--sort", "comm", "-g", "none").splitlines():
        mm = re.match(r"^\s*([0-9.]+)%\s+(.+)$", line)
        if mm and float(mm.group(1)) >= 0.1:
            print(f"{float(mm.group(1)):6.1f}%  {mm.group(2).strip()}")

    flat = perf_report(data, "--no-children", "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.01")
    totals, top = {}, {}
    for line in flat.splitlines():
        mm = LINE.match(line)
        if not mm:
            continue
        pct, dso, kind, sym = float(mm.group(1)), mm.group(3), mm.group(4), mm.group(5).strip()
        cat = classify(dso, kind, sym)
        totals[cat] = totals.get(cat, 0.0) + pct
        top.setdefault(cat, []).append((pct, sym))
    print(f"## self time by category ({sum(totals.values()):.1f}% of samples listed)")
    for cat, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        syms = ", ".join(f"{s[:55]} {p:.1f}%" for p, s in sorted(top[cat], reverse=True)[:3])
        print(f"{pct:6.1f}%  {cat}    [{syms}]")

    children = perf_report(data, "--children", "--sort", "sym", "-g", "none", "--percent-limit", "0.01")
    found = {}
    for line in children.splitlines():
        mm = re.match(r"^\s*([0-9.]+)%\s+([0-9.]+)%\s+\[([.k])\]\s+(.*)$", line)
        if not mm:
            continue
        inc, sym = float(mm.group(1)), mm.group(4).strip()
        for rx, label in INCLUSIVE:
            if re.search(rx, sym):
                # The largest symbol per label: summing would count a caller and its
                # callee (e.g. __x64_sys_X and __sys_X) twice.
                found[label] = max(found.get(label, 0.0), inc)
                break
    print("## inclusive time (self + callees) of the paths that matter")
    for _rx, label in INCLUSIVE:
        if label in found:
            print(f"{found[label]:6.1f}%  {label}")


if __name__ == "__main__":
    main()
