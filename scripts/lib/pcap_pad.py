#!/usr/bin/env python3
"""Pads a WAN capture with bulk WireGuard data packets, for the audit's memory test.

Usage: pcap_pad.py IN.pcap OUT.pcap MEGABYTES

IN is a classic pcap of Ethernet frames (tcpdump -w on the WAN veth). OUT holds every record
of IN in order, with 1400-byte WireGuard transport-data datagrams (type 4) between them,
between the same two addresses as the first UDP datagram of IN, until OUT is about
MEGABYTES large: a capture that is mostly bulk traffic around a few keymix exchanges, as a
real WAN capture is. The audit must give the same verdicts on OUT as on IN, with memory
that does not grow with the padding.
"""

import struct
import sys

PAYLOAD = 1400


def checksum(header):
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def data_frame(template):
    """An Ethernet/IPv4/UDP frame with the addresses and ports of `template` (a frame of
    IN) and a WireGuard data payload."""
    eth = template[:14]
    ihl = (template[14] & 0x0F) * 4
    ip = bytearray(template[14:34])
    ports = template[14 + ihl : 14 + ihl + 4]
    payload = struct.pack("<II", 4, 0x1234) + bytes(8) + bytes(PAYLOAD - 16)
    udp = ports + struct.pack("!HH", 8 + len(payload), 0)
    ip[0] = 0x45
    ip[2:4] = struct.pack("!H", 20 + len(udp) + len(payload))
    ip[6:8] = b"\x00\x00"  # not fragmented
    ip[10:12] = b"\x00\x00"
    ip[10:12] = struct.pack("!H", checksum(bytes(ip)))
    return eth + bytes(ip) + udp + payload


def main():
    src, dst, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic != b"\xd4\xc3\xb2\xa1" and magic != b"\x4d\x3c\xb2\xa1":
        sys.exit("pcap_pad: only little-endian classic pcap")
    if struct.unpack("<I", data[20:24])[0] != 1:
        sys.exit("pcap_pad: only Ethernet captures")
    records, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack("<I", data[at + 8 : at + 12])[0]
        records.append(data[at : at + 16 + caplen])
        at += 16 + caplen
    template = next(
        r[16:] for r in records if len(r) > 16 + 42 and r[16 + 12 : 16 + 14] == b"\x08\x00" and r[16 + 23] == 17
    )
    frame = data_frame(template)
    per_record = 16 + len(frame)
    padding = max(0, megabytes * 1_000_000 - len(data)) // per_record
    each, extra = divmod(padding, max(1, len(records)))
    with open(dst, "wb") as out:
        out.write(data[:24])
        for n, r in enumerate(records):
            out.write(r)
            header = r[:8] + struct.pack("<II", len(frame), len(frame))
            for _ in range(each + (1 if n < extra else 0)):
                out.write(header)
                out.write(frame)


if __name__ == "__main__":
    main()
