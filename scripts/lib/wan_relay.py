#!/usr/bin/env python3
"""A lossy, delaying UDP relay for the WAN router namespace, for kernels without tc netem.

Gateway A sends to LISTEN_A, gateway B to LISTEN_B; each datagram is forwarded out of the
other socket to the other gateway after DELAY_MS, or dropped with probability LOSS. Gateway
A's address is learned from what arrives on LISTEN_A; gateway B's is given (B_ADDR), so B's
own first packets reach A as soon as A has spoken once. Both gateways only ever see the
relay's addresses, so every tunnel datagram, both ways, crosses the emulated WAN.

Usage: wan_relay.py LISTEN_A LISTEN_B B_ADDR LOSS DELAY_MS SECONDS
       (addresses as ip:port; LOSS as a fraction, e.g. 0.05). Exits after SECONDS.
"""
import asyncio
import random
import signal
import sys


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Side(asyncio.DatagramProtocol):
    def __init__(self, relay, name):
        self.relay, self.name, self.transport = relay, name, None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, src):
        self.relay.forward(self.name, data, src)


class Relay:
    def __init__(self, b_addr, loss, delay):
        self.peer = {"a": None, "b": b_addr}
        self.loss, self.delay = loss, delay
        self.sides = {}
        self.forwarded = self.dropped = 0

    def forward(self, from_side, data, src):
        self.peer[from_side] = src
        to_side = "b" if from_side == "a" else "a"
        dst = self.peer[to_side]
        if dst is None:
            self.dropped += 1
            return
        if random.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        out = self.sides[to_side].transport
        asyncio.get_running_loop().call_later(self.delay, out.sendto, data, dst)


async def main():
    listen_a, listen_b, b_addr = addr(sys.argv[1]), addr(sys.argv[2]), addr(sys.argv[3])
    loss, delay_ms, seconds = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    relay = Relay(b_addr, loss, delay_ms / 1000)
    loop = asyncio.get_running_loop()
    for name, local in (("a", listen_a), ("b", listen_b)):
        _, proto = await loop.create_datagram_endpoint(lambda n=name: Side(relay, n), local_addr=local)
        relay.sides[name] = proto
    print(f"relay up: loss {loss}, delay {delay_ms} ms", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    print(f"relay: forwarded {relay.forwarded}, dropped {relay.dropped}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
