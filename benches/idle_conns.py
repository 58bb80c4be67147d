#!/usr/bin/env python3
"""benches/idle_conns.py — open N keep-alive HTTP/1.1 connections and hold them.

Usage: idle_conns.py HOST PORT N [HOLD_SECONDS] [PATH]

Opens N TCP connections to HOST:PORT (at most CONCURRENCY connects/requests in
flight at once, so the upstream behind a proxy sees a small pool), sends one
`GET PATH` on each, reads the whole response (Content-Length), and keeps the
connection open without sending anything else. Then prints one line

    READY open=N_OPEN failed=N_FAILED seconds=T

on stdout and holds every connection for HOLD_SECONDS (default 30; the caller
normally kills it earlier), then closes them all and exits. Loopback only.
"""
import asyncio
import sys
import time

CONCURRENCY = 256


async def open_one(host, port, path, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n")[0].decode(errors="replace"))
            conns.append(writer)
        except Exception as e:  # counted, the first few shown
            errors.append(repr(e))


async def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    path = sys.argv[5] if len(sys.argv) > 5 else "/"
    sem = asyncio.Semaphore(CONCURRENCY)
    conns, errors = [], []
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(host, port, path, sem, conns, errors) for _ in range(n)))
    for e in errors[:3]:
        print(f"error: {e}", file=sys.stderr)
    print(f"READY open={len(conns)} failed={len(errors)} seconds={time.monotonic() - t0:.1f}", flush=True)
    await asyncio.sleep(hold)  # the caller usually ends us earlier (SIGTERM)
    for w in conns:
        w.close()
    print(f"closed {len(conns)}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
