#!/usr/bin/env python3
"""What a passive observer of the WAN learns: checks a capture of Trident traffic against
keymix version 2's wire-privacy claims (docs/PROTOCOL.md, "Version 2: wire privacy", and
"Padding" in "WireGuard data plane and epochs"). Standard library only; reads classic pcap
(tcpdump -w) itself, Ethernet / Linux cooked / raw IP, IPv4 and IPv6, reassembles IP
fragments, so a keymix message split by a small-MTU path is checked whole, and splits UDP
GSO trains of WireGuard data into their datagrams (see gso_segments).

Usage:
  wire_privacy.py check PCAP [--pubkey B64]... [--key-ids FILE] [--max-epoch N] [--mtu N]
  wire_privacy.py extract PCAP [--src IP] [--dst IP] [--first-byte N] [--version N] [--partial]

`check` looks at the UDP payload of every datagram in PCAP:
  static_key     neither static public key (--pubkey, base64 as `trident pubkey` prints
                 it: its 32 raw bytes) appears anywhere in any datagram;
  key_id         no QKD key ID (--key-ids: a file, one ID a line) appears in any datagram:
                 as the ASCII string, in the other spellings of the same UUID (upper case,
                 the 32-hex-digit SKIP form) and as its 16 raw bytes;
  epoch          no epoch number 1..--max-epoch appears in a keymix datagram (first byte
                 0x81-0x84) as its 8-byte little-endian encoding (the wire encoding of
                 epoch fields in version 1);
  timestamp      no keymix timestamp: see TIME_WINDOW_NS below for the method;
  linkable_inits no two distinct keymix Inits (0x81; byte-identical copies, i.e.
                 retransmissions, count once) have the same 8 or more consecutive bytes at
                 the same offsets beyond the fixed 4-byte header;
  padding        every WireGuard transport data message (type 4) is 32 + 16k bytes long
                 (16-byte header, padded plaintext, 16-byte tag). With --mtu N, also
                 32 + N: padding stops at the interface MTU (PROTOCOL.md, "Padding", as in
                 WireGuard's kernel module), so at an MTU that is not a multiple of 16 a
                 packet of 16k - 15 .. N bytes is sent at N. Counted apart as `at_mtu`.
It prints one JSON object on stdout (counts, every violation with up to 5 examples, and
`problems`: why the capture cannot support the claims, e.g. no keymix datagram, no data
packet other than keepalives, fewer than two distinct Inits, truncated or incomplete
datagrams) and a short summary on stderr. Exit 0: no violation and no problem; 1: a
violation (and no problem); 2: a problem, or the capture cannot be read.

`extract` prints `SRC_IP:PORT HEX` of the first UDP payload that matches (source and
destination address, first byte, second byte = keymix version), for replaying it; exit 1
when none does. --partial: the capture is still being written (its last record may be cut).
"""

import argparse
import base64
import json
import struct
import sys
import uuid

from wan_capture import CaptureError, read_capture

# Timestamps: the 8-byte little-endian nanosecond clock values of the run cannot be
# enumerated, so every 8-byte window (every offset) of every distinct keymix datagram is
# read as a u64 little-endian and must not lie within the capture's own wall-clock range
# (first to last record, in nanoseconds since 1970) widened by this margin on each side,
# which covers any clock skew between the gateways and the capture. A random window lands
# in that range with probability ~ (2 h + the capture's span) / 2^64 ~ 4e-7; the summary
# gives the expected number of such chance hits for the capture (`chance_hits_expected`),
# so a lone hit at a random offset can be told from a leak, which shows at the same offset
# in every message of its kind.
TIME_WINDOW_NS = 3600 * 10**9

KEYMIX_TYPES = {0x81: "init", 0x82: "resp", 0x83: "confirm", 0x84: "cookie"}
HEADER = 4  # keymix's fixed header: type, version, 0, 0 (a mask in version 1)
MIN_SHARED = 8
EXAMPLES = 5


# --- the checks ------------------------------------------------------------------------


def key_id_forms(key_id):
    """The byte strings that would give a key ID away."""
    forms = {key_id.encode()}
    try:
        u = uuid.UUID(key_id)
    except ValueError:
        return forms
    forms |= {str(u).encode(), str(u).upper().encode(), u.hex.encode(), u.hex.upper().encode(), u.bytes}
    return forms


def describe(entry, payload):
    ns, src, sport, dst, dport, _ = entry
    first = payload[0] if payload else None
    kind = KEYMIX_TYPES.get(first) if first is not None else None
    if kind is not None:
        kind = "keymix %s v%d" % (kind, payload[1] if len(payload) > 1 else 0)
    elif payload[:4] in (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00", b"\x03\x00\x00\x00", b"\x04\x00\x00\x00"):
        kind = "wireguard type %d" % first
    else:
        kind = "other"
    return "%s:%d -> %s:%d, %s, %d bytes" % (src, sport, dst, dport, kind, len(payload))


def shared_run(a, b):
    """Longest run of equal bytes at the same offsets beyond the header: (offset, length)."""
    best, start, run = (0, 0), 0, 0
    for i in range(HEADER, min(len(a), len(b))):
        if a[i] == b[i]:
            if run == 0:
                start = i
            run += 1
            if run > best[1]:
                best = (start, run)
        else:
            run = 0
    return best


def check(args):
    cap = read_capture(args.pcap)
    pubkeys = [base64.b64decode(k) for k in args.pubkey]
    for k in pubkeys:
        if len(k) != 32:
            raise CaptureError("--pubkey must be 32 bytes in base64")
    key_ids = []
    if args.key_ids:
        with open(args.key_ids) as f:
            key_ids = sorted({line.strip() for line in f if line.strip() and line.strip() != "None"})
    id_forms = [(k, form) for k in key_ids for form in key_id_forms(k)]
    epochs = [(n, struct.pack("<Q", n)) for n in range(1, args.max_epoch + 1)]

    violations = {name: [] for name in ("static_key", "key_id", "epoch", "timestamp", "linkable_inits", "padding")}
    keymix_kinds, wg = {}, {"data": 0, "data_nonkeepalive": 0, "at_mtu": 0, "handshake": 0}
    data_lengths = {}
    seen_keymix, inits = set(), []
    lo = hi = None
    if cap.first_ns is not None:
        lo, hi = cap.first_ns - TIME_WINDOW_NS, cap.last_ns + TIME_WINDOW_NS
    windows = 0

    for entry in cap.out:
        payload = entry[5]
        for i, k in enumerate(pubkeys):
            at = payload.find(k)
            if at >= 0:
                violations["static_key"].append("static key %d at offset %d of %s" % (i + 1, at, describe(entry, payload)))
        for key_id, form in id_forms:
            at = payload.find(form)
            if at >= 0:
                violations["key_id"].append("key ID %s (as %r) at offset %d of %s" % (key_id, form if len(form) != 16 else "16 raw bytes", at, describe(entry, payload)))
        if not payload:
            continue
        first = payload[0]
        if first in KEYMIX_TYPES:
            kind = "%s v%d" % (KEYMIX_TYPES[first], payload[1] if len(payload) > 1 else 0)
            keymix_kinds[kind] = keymix_kinds.get(kind, 0) + 1
            if payload in seen_keymix:
                continue  # a retransmission: the same bytes say nothing new
            seen_keymix.add(payload)
            if first == 0x81:
                inits.append((entry, payload))
            for n, enc in epochs:
                at = payload.find(enc)
                while at >= 0:
                    violations["epoch"].append("epoch %d at offset %d of %s" % (n, at, describe(entry, payload)))
                    at = payload.find(enc, at + 1)
            for at in range(0, len(payload) - 7):
                windows += 1
                v = int.from_bytes(payload[at : at + 8], "little")
                if lo <= v <= hi:
                    violations["timestamp"].append(
                        "u64 LE %d (%+.1f s from the capture's first record) at offset %d of %s"
                        % (v, (v - cap.first_ns) / 1e9, at, describe(entry, payload))
                    )
        elif payload[:4] == b"\x04\x00\x00\x00":
            wg["data"] += 1
            if len(payload) > 32:
                wg["data_nonkeepalive"] += 1
            data_lengths[len(payload)] = data_lengths.get(len(payload), 0) + 1
            body = len(payload) - 32
            if args.mtu and body == args.mtu:
                wg["at_mtu"] += 1
            elif body < 0 or body % 16:
                violations["padding"].append("transport data of %d bytes (32 + %d): %s" % (len(payload), body, describe(entry, payload)))
        elif payload[:4] in (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00", b"\x03\x00\x00\x00"):
            wg["handshake"] += 1

    for i in range(len(inits)):
        for j in range(i + 1, len(inits)):
            (ea, a), (eb, b) = inits[i], inits[j]
            at, run = shared_run(a, b)
            if run >= MIN_SHARED:
                violations["linkable_inits"].append(
                    "%d equal bytes at offsets %d..%d (%s) of Inits %d (%s) and %d (%s)"
                    % (run, at, at + run - 1, a[at : at + run].hex()[:64], i + 1, describe(ea, a), j + 1, describe(eb, b))
                )

    problems = []
    if not cap.out:
        problems.append("no UDP datagram in the capture")
    if not keymix_kinds:
        problems.append("no keymix datagram")
    if len(inits) < 2:
        problems.append("fewer than two distinct keymix Inits (%d): nothing to link" % len(inits))
    if wg["data_nonkeepalive"] == 0:
        problems.append("no WireGuard data packet other than keepalives")
    if cap.stats["truncated"]:
        problems.append("%d datagrams truncated or cut short: not checked" % cap.stats["truncated"])
    if cap.stats["fragments_missing"]:
        problems.append("%d IP fragments of incomplete datagrams: not checked" % cap.stats["fragments_missing"])

    width = (hi - lo) if lo is not None else 0
    report = {
        "capture": dict(cap.stats, first_ns=cap.first_ns, last_ns=cap.last_ns),
        "keymix": keymix_kinds,
        "distinct_keymix": len(seen_keymix),
        "distinct_inits": len(inits),
        "wireguard": dict(wg, data_lengths={str(k): v for k, v in sorted(data_lengths.items())}),
        "checked": {
            "pubkeys": len(pubkeys),
            "key_ids": len(key_ids),
            "max_epoch": args.max_epoch,
            "time_range_ns": [lo, hi],
            "windows": windows,
            "chance_hits_expected": windows * width / 2**64,
            "mtu": args.mtu,
        },
        "violations": {k: len(v) for k, v in violations.items()},
        "examples": {k: v[:EXAMPLES] for k, v in violations.items() if v},
        "problems": problems,
    }
    report["ok"] = not problems and not any(violations.values())
    print(json.dumps(report))
    out = sys.stderr
    print(
        "%d UDP datagrams (%d reassembled from IP fragments, %d GSO trains split), keymix %s, %d distinct Inits; WireGuard data %d (%d not keepalives, %d at the MTU)"
        % (cap.stats["udp"], cap.stats["reassembled"], cap.stats["gso_trains"], keymix_kinds, len(inits), wg["data"], wg["data_nonkeepalive"], wg["at_mtu"]),
        file=out,
    )
    print(
        "checked: %d static keys, %d key IDs, epochs 1..%d, %d u64 windows (chance hits expected %.4f)"
        % (len(pubkeys), len(key_ids), args.max_epoch, windows, report["checked"]["chance_hits_expected"]),
        file=out,
    )
    for name, found in violations.items():
        print("%-15s %s" % (name, "%d found, e.g. %s" % (len(found), found[0]) if found else "none"), file=out)
    for p in problems:
        print("problem: %s" % p, file=out)
    if problems:
        return 2
    return 0 if report["ok"] else 1


def extract(args):
    cap = read_capture(args.pcap, args.partial)
    for entry in cap.out:
        ns, src, sport, dst, dport, payload = entry
        if args.src and src != args.src:
            continue
        if args.dst and dst != args.dst:
            continue
        if args.first_byte is not None and (not payload or payload[0] != args.first_byte):
            continue
        if args.version is not None and (len(payload) < 2 or payload[1] != args.version):
            continue
        print("%s:%d %s" % (src, sport, payload.hex()))
        return 0
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("pcap")
    c.add_argument("--pubkey", action="append", default=[])
    c.add_argument("--key-ids")
    c.add_argument("--max-epoch", type=int, default=0)
    c.add_argument("--mtu", type=int, default=0)
    e = sub.add_parser("extract")
    e.add_argument("pcap")
    e.add_argument("--src")
    e.add_argument("--dst")
    e.add_argument("--partial", action="store_true", help="the capture may still be written to")
    e.add_argument("--first-byte", type=lambda s: int(s, 0))
    e.add_argument("--version", type=int)
    args = p.parse_args()
    try:
        return check(args) if args.cmd == "check" else extract(args)
    except (CaptureError, OSError, ValueError) as err:
        print("wire_privacy: %s" % err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
