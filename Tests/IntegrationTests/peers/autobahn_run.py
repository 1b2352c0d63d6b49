#!/usr/bin/env python3
"""Runs Autobahn fuzzing-client cases (through kosoku) against one WebSocket URL
and writes what each case observed as JSON (AutobahnTests.swift).

Usage: autobahn_run.py URL --out FILE [--case ID_OR_GLOB ...] [--exclude ...]

kosoku (https://github.com/curioswitch/kosoku) drives the Autobahn TestSuite's
own case files from a Rust runner; it opens one connection per case to URL
(path kept as given). A run where some cases fail raises FailureError carrying
the same results, which is normal here: the tests compare two runs, they do
not grade the echo server.

The JSON is {"elapsed": seconds, "cases": [...]} with, per case, only what the
peer under test determines and a byte-exact tunnel cannot change: the
verdicts, close codes and reasons, who closed, frame counts by opcode, octet
counts at wire level (compressed cases), a digest of every message/ping/pong
received, and the handshake headers that negotiate the connection. Durations
and socket read/write sizes are left out: those depend on TCP segmentation
and timing, which a proxy legitimately changes.
"""

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time

from kosoku import FailureError, run_fuzzingclient

# Handshake response headers that shape the WebSocket session. A proxy adds
# its own headers (Via, X-Request-Id, ...), so the raw response is not compared.
NEGOTIATION_HEADERS = ("upgrade", "sec-websocket-accept", "sec-websocket-extensions",
                       "sec-websocket-protocol")

TRAFFIC_KEYS = ("incomingOctetsWireLevel", "incomingOctetsWebSocketLevel", "incomingOctetsAppLevel",
                "incomingWebSocketFrames", "incomingWebSocketMessages",
                "outgoingOctetsWireLevel", "outgoingOctetsWebSocketLevel", "outgoingOctetsAppLevel",
                "outgoingWebSocketFrames", "outgoingWebSocketMessages")


def received_digest(events):
    """Count and SHA-256 over every received event (messages can be 16 MiB)."""
    h = hashlib.sha256()
    events = events or []  # None when the case never got to open
    for event in events:
        for part in event:
            if isinstance(part, str):
                data = b"s" + part.encode("utf-8", "surrogatepass")
            elif isinstance(part, (bytes, bytearray)):
                data = b"b" + bytes(part)
            else:
                data = b"r" + repr(part).encode()
            h.update(len(data).to_bytes(8, "big") + data)
    return {"count": len(events), "sha256": h.hexdigest()}


def handshake(raw):
    lines = (raw or "").split("\r\n")
    status = lines[0] if lines else ""
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in NEGOTIATION_HEADERS:
            headers[name.strip().lower()] = value.strip()
    # "HTTP/1.1 101 Switching Protocols" -> "101": a proxy may word the reason differently.
    parts = status.split(" ")
    return {"status": parts[1] if len(parts) > 1 else status, "headers": headers}


def describe(case):
    stats = case.traffic_stats
    stats = stats.__json__() if stats is not None else None
    return {
        "id": case.case_id,
        "passed": case.passed,
        "behavior": case.behavior.value,
        "behavior_close": case.behavior_close.value,
        # Verdicts the case accepts for its message exchange. More than one
        # (OK and NON-STRICT) marks a "fail fast" case: whether the server
        # echoes a message before it fails the connection on a later bad frame
        # depends on how the bytes were split into reads, so it can differ
        # between two runs even without a proxy.
        "alternatives": sorted(case.expected.keys()) if isinstance(case.expected, dict) else [],
        "result": case.result,
        "result_close": case.result_close,
        "remote_close_code": case.remote_close_code,
        "remote_close_reason": case.remote_close_reason,
        "local_close_code": case.local_close_code,
        "local_close_reason": case.local_close_reason,
        "was_clean": case.was_clean,
        "closed_by_me": case.closed_by_me,
        "dropped_by_me": case.dropped_by_me,
        "failed_by_me": case.failed_by_me,
        "open_handshake_timeout": case.was_open_handshake_timeout,
        "close_handshake_timeout": case.was_close_handshake_timeout,
        "server_drop_timeout": case.was_server_connection_drop_timeout,
        "rx_frames": {str(k): v for k, v in sorted((case.rx_frame_stats or {}).items())},
        "tx_frames": {str(k): v for k, v in sorted((case.tx_frame_stats or {}).items())},
        "traffic": {k: stats.get(k) for k in TRAFFIC_KEYS} if stats else None,
        "received": received_digest(case.received),
        "handshake": handshake(case.http_response),
    }


async def run(url, cases, exclude):
    try:
        return await run_fuzzingclient(url, cases or None, exclude or None, concurrency=1)
    except FailureError as failure:
        return failure.results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--out", required=True)
    ap.add_argument("--case", action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    args = ap.parse_args()

    started = time.monotonic()
    results = asyncio.run(run(args.url, args.case, args.exclude))
    report = {"elapsed": round(time.monotonic() - started, 2),
              "cases": [describe(c) for c in results]}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    os.rename(tmp, args.out)
    print("%d cases in %.1f s" % (len(results), report["elapsed"]), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # kosoku's runtime threads can abort the interpreter at shutdown (seen as
    # SIGABRT after a complete run); the report is written, so leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
