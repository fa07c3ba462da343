#!/usr/bin/env python3
"""delay-proxy.py LISTEN_IP:PORT UPSTREAM_IP:PORT CONTROL_FILE

A TCP and UDP forwarder for the fault benchmark (scripts/bench-faults.sh): this kernel has no
`tc netem`, so "+200 ms on every packet to one replica" is a proxy in front of it. Every byte
and datagram going *to* the upstream waits the delay (milliseconds, read from CONTROL_FILE
every 50 ms; 0 or a missing file means none) before it is forwarded; answers come back at
once. Order is kept per connection. Runs until killed (SIGTERM). Standard library only.
"""
import asyncio
import sys
import time

DELAY_S = 0.0


async def watch_control(path):
    global DELAY_S
    while True:
        try:
            with open(path) as f:
                DELAY_S = max(0.0, float(f.read().strip() or 0) / 1000.0)
        except (OSError, ValueError):
            DELAY_S = 0.0
        await asyncio.sleep(0.05)


async def delayed_pipe(reader, writer):
    """Copies reader to writer, each chunk held until its arrival time plus the delay."""
    queue = asyncio.Queue()

    async def pump_in():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + DELAY_S, data))
            if not data:
                return

    async def pump_out():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(pump_in(), pump_out(), return_exceptions=True)
    writer.close()


async def plain_pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


async def handle_tcp(client_reader, client_writer, upstream):
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        delayed_pipe(client_reader, up_writer),
        plain_pipe(up_reader, client_writer),
        return_exceptions=True,
    )


class UdpFront(asyncio.DatagramProtocol):
    """The listening UDP socket: one upstream socket per client address."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.backs = {}

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, client):
        loop = asyncio.get_running_loop()
        back = self.backs.get(client)
        if back is None:
            back = UdpBack(self, client)
            self.backs[client] = back
            loop.create_task(
                loop.create_datagram_endpoint(lambda: back, remote_addr=self.upstream)
            )
        loop.call_later(DELAY_S, back.send, data)


class UdpBack(asyncio.DatagramProtocol):
    def __init__(self, front, client):
        self.front = front
        self.client = client
        self.transport = None
        self.waiting = []

    def connection_made(self, transport):
        self.transport = transport
        for data in self.waiting:
            transport.sendto(data)
        self.waiting = []

    def send(self, data):
        if self.transport is None:
            self.waiting.append(data)
        else:
            self.transport.sendto(data)

    def datagram_received(self, data, addr):
        self.front.transport.sendto(data, self.client)

    def error_received(self, exc):
        pass


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main():
    listen, upstream, control = address(sys.argv[1]), address(sys.argv[2]), sys.argv[3]
    loop = asyncio.get_running_loop()
    asyncio.create_task(watch_control(control))
    server = await asyncio.start_server(
        lambda r, w: handle_tcp(r, w, upstream), listen[0], listen[1], backlog=4096
    )
    await loop.create_datagram_endpoint(lambda: UdpFront(upstream), local_addr=listen)
    print(f"listening on {listen[0]}:{listen[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
