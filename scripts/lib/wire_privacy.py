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


class CaptureError(Exception):
    pass


# --- reading the capture ---------------------------------------------------------------


def records(path, partial=False):
    """(timestamp in ns, link type, frame bytes, truncated) for each pcap record. With
    `partial`, a cut-off last record (a capture still being written) ends the capture."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise CaptureError("not a pcap file (too short)")
    magic = data[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }
    if magic not in table:
        if magic == b"\x0a\x0d\x0d\x0a":
            raise CaptureError("pcapng is not supported: capture with tcpdump -w (classic pcap)")
        raise CaptureError("not a pcap file (magic %s)" % magic.hex())
    endian, frac_ns = table[magic]
    link = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    at = 24
    while at < len(data):
        if at + 16 > len(data):
            if partial:
                return
            raise CaptureError("truncated record header at byte %d" % at)
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[at : at + 16])
        at += 16
        if at + caplen > len(data):
            if partial:
                return
            raise CaptureError("truncated record at byte %d" % at)
        yield sec * 10**9 + frac * frac_ns, link, data[at : at + caplen], caplen < origlen
        at += caplen


def network_layer(link, frame):
    """(ethertype-like protocol, IP packet) of a frame, or None for other frames."""
    if link == 1:  # Ethernet
        at, proto = 14, None
        if len(frame) < 14:
            return None
        proto = struct.unpack("!H", frame[12:14])[0]
        while proto in (0x8100, 0x88A8) and len(frame) >= at + 4:
            proto = struct.unpack("!H", frame[at + 2 : at + 4])[0]
            at += 4
        return proto, frame[at:]
    if link == 113:  # Linux cooked (SLL)
        return (struct.unpack("!H", frame[14:16])[0], frame[16:]) if len(frame) >= 16 else None
    if link == 276:  # Linux cooked v2 (SLL2)
        return (struct.unpack("!H", frame[0:2])[0], frame[20:]) if len(frame) >= 20 else None
    if link in (101, 12, 228, 229):  # raw IP
        if not frame:
            return None
        return (0x0800 if frame[0] >> 4 == 4 else 0x86DD), frame
    raise CaptureError("unsupported link type %d" % link)


class Datagrams:
    """UDP datagrams of a capture, IP fragments reassembled."""

    def __init__(self):
        self.out = []  # (ns, src ip, src port, dst ip, dst port, payload)
        self.stats = {"records": 0, "udp": 0, "not_udp": 0, "fragments": 0, "reassembled": 0, "truncated": 0, "gso_trains": 0}
        self.pending = {}  # fragment key -> {offset: bytes}, total length
        self.first_ns = self.last_ns = None

    def add_record(self, ns, link, frame, truncated):
        self.stats["records"] += 1
        self.first_ns = ns if self.first_ns is None else min(self.first_ns, ns)
        self.last_ns = ns if self.last_ns is None else max(self.last_ns, ns)
        if truncated:
            self.stats["truncated"] += 1
            return
        net = network_layer(link, frame)
        if net is None:
            self.stats["not_udp"] += 1
            return
        proto, pkt = net
        if proto == 0x0800:
            self.ipv4(ns, pkt)
        elif proto == 0x86DD:
            self.ipv6(ns, pkt)
        else:
            self.stats["not_udp"] += 1

    def ipv4(self, ns, pkt):
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.stats["not_udp"] += 1
            return
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack("!H", pkt[2:4])[0]
        if total > len(pkt) or ihl < 20 or total < ihl:
            self.stats["truncated"] += 1
            return
        ident, flags_off = struct.unpack("!HH", pkt[4:8])
        proto, src, dst = pkt[9], pkt[12:16], pkt[16:20]
        body = pkt[ihl:total]
        more, offset = bool(flags_off & 0x2000), (flags_off & 0x1FFF) * 8
        if more or offset:
            body = self.fragment(("4", src, dst, ident, proto), offset, more, body)
            if body is None:
                return
        if proto != 17:
            self.stats["not_udp"] += 1
            return
        self.udp(ns, ip_text(src), ip_text(dst), body)

    def ipv6(self, ns, pkt):
        if len(pkt) < 40 or pkt[0] >> 4 != 6:
            self.stats["not_udp"] += 1
            return
        plen = struct.unpack("!H", pkt[4:6])[0]
        if 40 + plen > len(pkt):
            self.stats["truncated"] += 1
            return
        nxt, src, dst = pkt[6], pkt[8:24], pkt[24:40]
        rest = pkt[40 : 40 + plen]
        frag = None
        while nxt in (0, 43, 60, 44):
            if len(rest) < 8:
                self.stats["truncated"] += 1
                return
            if nxt == 44:
                off_m, ident = struct.unpack("!HI", rest[2:8])
                frag = (off_m & 0xFFF8, bool(off_m & 1), ident)
                nxt, rest = rest[0], rest[8:]
            else:
                size = (rest[1] + 1) * 8
                nxt, rest = rest[0], rest[size:]
        if frag is not None:
            offset, more, ident = frag
            rest = self.fragment(("6", src, dst, ident, nxt), offset, more, rest)
            if rest is None:
                return
        if nxt != 17:
            self.stats["not_udp"] += 1
            return
        self.udp(ns, ip_text(src), ip_text(dst), rest)

    def fragment(self, key, offset, more, body):
        """Stores a fragment; returns the reassembled payload once it is complete."""
        self.stats["fragments"] += 1
        parts, total = self.pending.get(key, ({}, None))
        parts[offset] = body
        if not more:
            total = offset + len(body)
        self.pending[key] = (parts, total)
        if total is None:
            return None
        whole, at = bytearray(), 0
        for off in sorted(parts):
            if off > at:
                return None  # a hole: wait for more
            whole[off:] = parts[off]
            at = max(at, off + len(parts[off]))
        if at < total:
            return None
        del self.pending[key]
        self.stats["reassembled"] += 1
        return bytes(whole[:total])

    def udp(self, ns, src, dst, seg):
        if len(seg) < 8:
            self.stats["truncated"] += 1
            return
        sport, dport, length = struct.unpack("!HHH", seg[:6])
        if length < 8 or length > len(seg):
            self.stats["truncated"] += 1
            return
        payload = seg[8:length]
        segments = gso_segments(payload)
        if len(segments) > 1:
            self.stats["gso_trains"] += 1
        for part in segments:
            self.stats["udp"] += 1
            self.out.append((ns, src, sport, dst, dport, part))


def gso_segments(payload):
    """The datagrams of a UDP GSO train, or [payload]. The tunnel sends WireGuard data in
    GSO runs (equal-sized datagrams, the last maybe shorter); between two network
    namespaces a veth carries such a run as one packet, so a capture there shows the train,
    where a real link (or a NIC's segmentation) carries each datagram on its own. A train
    is recognised by its stride k: at every multiple of k a transport data header starts
    (type 4, three zero bytes) whose counter's upper four bytes (offset 12) equal the first
    datagram's, and the last datagram holds at least a header and a tag (32 bytes). The
    smallest such k is the run's datagram size (eight fixed bytes a datagram: a stride found
    by chance in ciphertext has probability ~2^-64)."""
    head = b"\x04\x00\x00\x00"
    if len(payload) < 64 or payload[:4] != head:
        return [payload]
    high = payload[12:16]
    k = payload.find(head, 32)
    while 0 < k <= len(payload) - 32:
        if all(payload[at : at + 4] == head and payload[at + 12 : at + 16] == high for at in range(k, len(payload), k)) and len(payload) - (len(payload) - 1) // k * k >= 32:
            return [payload[at : at + k] for at in range(0, len(payload), k)]
        k = payload.find(head, k + 1)
    return [payload]


def ip_text(raw):
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def read_capture(path, partial=False):
    d = Datagrams()
    for rec in records(path, partial):
        d.add_record(*rec)
    d.stats["fragments_missing"] = sum(len(parts) for parts, _ in d.pending.values())
    return d


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
