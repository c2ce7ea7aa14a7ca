#!/usr/bin/env python3
"""Endpoints for bench/checker.sh, all on loopback.

HTTP servers on 127.0.1.1..N (the path /c/<i> names the check) and TCP
listeners on 127.0.2.1 (the local port names the check). Every probe's
arrival time is recorded per check. Writes the listening addresses to PORTS
(JSON) and prints "ready"; on SIGTERM writes the arrival times to TIMES
(JSON: key -> [monotonic seconds]) and exits.

Usage: checker-endpoints.py PORTS TIMES HTTP_ADDRESSES TCP_LISTENERS
"""
import asyncio
import json
import resource
import signal
import sys
import time

ports_file, times_file = sys.argv[1], sys.argv[2]
http_addresses, tcp_listeners = int(sys.argv[3]), int(sys.argv[4])
times = {}


async def http(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        path = head.split(b" ", 2)[1].decode()
        times.setdefault(path, []).append(time.monotonic())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


async def tcp(reader, writer):
    port = writer.get_extra_info("sockname")[1]
    times.setdefault("tcp:%d" % port, []).append(time.monotonic())
    writer.close()


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers, ports = [], {"http": [], "tcp": []}
    for i in range(http_addresses):
        ip = "127.0.1.%d" % (i + 1)
        server = await asyncio.start_server(http, ip, 0, backlog=1024)
        servers.append(server)
        ports["http"].append([ip, server.sockets[0].getsockname()[1]])
    for _ in range(tcp_listeners):
        server = await asyncio.start_server(tcp, "127.0.2.1", 0, backlog=64)
        servers.append(server)
        ports["tcp"].append(["127.0.2.1", server.sockets[0].getsockname()[1]])
    with open(ports_file, "w") as f:
        json.dump(ports, f)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    with open(times_file, "w") as f:
        json.dump(times, f)


asyncio.run(main())
