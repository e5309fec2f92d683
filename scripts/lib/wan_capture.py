"""A classic pcap (tcpdump -w) read as UDP datagrams, standard library only: Ethernet,
Linux cooked or raw IP link types, IPv4 and IPv6, IP fragments reassembled (a keymix message
split by a small-MTU path is seen whole) and UDP GSO trains split into their datagrams. Used
by wire_privacy.py."""

import struct


class CaptureError(Exception):
    pass


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
