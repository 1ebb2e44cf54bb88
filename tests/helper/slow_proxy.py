#!/usr/bin/env python3
"""slow_proxy.py — a TCP proxy on 127.0.0.1 that moves at most RATE bytes a
second in each direction, to make a transfer slow enough to interrupt.

usage: slow_proxy.py PORT_FILE TARGET_PORT RATE COUNT_FILE

It listens on a free port, writes the port to PORT_FILE, forwards every
connection to 127.0.0.1:TARGET_PORT, and keeps COUNT_FILE holding the bytes
forwarded so far (both directions), so that a test can wait until a
transfer is in flight. It runs until killed.
"""
import asyncio
import os
import sys

CHUNK = 16 << 10


def main():
    port_file, target, rate, count_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    moved = [0]

    def note(n):
        moved[0] += n
        tmp = count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % moved[0])
        os.replace(tmp, count_file)

    async def pump(reader, writer):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
                note(len(data))
                await asyncio.sleep(len(data) / rate)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def serve(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter), pump(sreader, cwriter))

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        note(0)
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, port_file)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
