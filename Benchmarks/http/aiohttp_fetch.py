#!/usr/bin/env python3
"""The aiohttp peer client: COUNT GETs of one URL with asyncio.gather over one
aiohttp.ClientSession, the program of the defining document:

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(fetch(session, url) for _ in range(count)))

    aiohttp_fetch.py [--count 1000] [--limit-zero] URL

Without --limit-zero the session has aiohttp's default connector, as the document writes
it: TCPConnector(limit=100), so at most 100 connections are open at once and the other
requests wait for one. --limit-zero gives it TCPConnector(limit=0): no cap, every request
in flight at once (like the Go client and `spindle fetch`).

Prints one line:

    RESULT wall_ms=W rps=R p50_ms=A p99_ms=B peak_rss_kib=K errors=E

wall_ms is from just before the session opens to the last body read (the session's
close is outside it); rps is COUNT / wall; p50/p99 are nearest-rank percentiles of the
per-request latency (from the coroutine's first step, so it includes the wait for a
connection under limit=100, to its body read) of the requests that succeeded; errors
counts requests that raised or answered other than 200; peak_rss_kib is
resource.getrusage's ru_maxrss (KiB on Linux) of this process. One asyncio event loop,
one thread (the default loop, no uvloop).
"""
import argparse
import asyncio
import math
import resource
import sys
import time

import aiohttp


async def fetch(session, url, latencies):
    t0 = time.perf_counter()
    try:
        async with session.get(url) as resp:
            await resp.text()
            if resp.status != 200:
                return False
    except Exception:  # counted, never raised: one failure must not abort the gather
        return False
    latencies.append(time.perf_counter() - t0)
    return True


async def run(url, count, limit_zero):
    latencies = []
    connector = aiohttp.TCPConnector(limit=0) if limit_zero else None
    start = time.perf_counter()
    session = aiohttp.ClientSession(connector=connector)
    try:
        results = await asyncio.gather(*(fetch(session, url, latencies) for _ in range(count)))
        wall = time.perf_counter() - start
    finally:
        await session.close()
    return wall, latencies, results.count(False)


def percentile(sorted_values, p):
    if not sorted_values:
        return "NA"
    k = max(0, math.ceil(p * len(sorted_values)) - 1)
    return "%.3f" % (sorted_values[k] * 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--limit-zero", action="store_true", help="TCPConnector(limit=0): no connection cap")
    ap.add_argument("url")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    wall, latencies, errors = asyncio.run(run(args.url, args.count, args.limit_zero))
    latencies.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT wall_ms=%.3f rps=%.0f p50_ms=%s p99_ms=%s peak_rss_kib=%d errors=%d"
          % (wall * 1000, args.count / wall, percentile(latencies, 0.50), percentile(latencies, 0.99), rss, errors))


if __name__ == "__main__":
    sys.exit(main())
