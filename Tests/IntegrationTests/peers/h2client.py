#!/usr/bin/env python3
"""HTTP/2 client scenarios for Switchyard's HTTP/2 tests (the `h2` package and its hyperframe
and hpack, from the venv).

Usage: h2client.py SCENARIO --port P [--tls [--name SNI] --cafile F] [--authority A]
                   [options] [--ready-file PATH] [--parent PID]

Without --tls the connection is h2c with prior knowledge (RFC 9113 3.3); with it, TLS offering
ALPN "h2" only, SNI --name (none when not given), verified against --cafile (for --name, when
given). --authority is the :authority of every request (default: --name or 127.0.0.1, with
the port).

Prints one JSON object on stdout when done, and judges nothing itself beyond recording facts;
the Swift tests assert on them. An exception becomes {"error": "..."} with whatever was
recorded so far, exit status 0. A GOAWAY is recorded as {"error_code": NAME, "last_stream_id":
N, "debug": TEXT}; "closed" says the server ended the TCP connection (EOF or reset) before
the scenario's deadline.

Scenarios:
  settings      the preface, then the server's first frame: {"first_frame": TYPE,
                "settings": {"<id>": value}} (ids as numbers, RFC 9113 6.5.2 / RFC 8441 3)
  requests --plan JSON
                requests one after another on one connection; JSON is a list of
                {"method", "path", "authority", "headers": [[name, value]]} (all optional
                but path). Each answer: stream_id, status, headers, body (text, first 4 KiB),
                body_length, reset (error code name, when the stream was reset instead)
  rapid-reset --count N
                raw frames: N times HEADERS (END_STREAM) of a GET, at once RST_STREAM
                (CANCEL) of the same stream (CVE-2023-44487), then one more GET (final),
                all in one write; then reads until the server closes or answers the last
                GET: final_status, goaway, closed, close_kind, resets_sent, responses
                (HEADERS frames the server managed to send), frames (types received, in
                order), send_error
  continuation --frames N
                raw frames: one GET whose header block is split over HEADERS and N
                CONTINUATION frames (END_HEADERS on the last; CVE-2024-27316 when N is
                large), all in one write, then reads until an answer, or the close, or the
                deadline: status, goaway, closed, close_kind, frames, send_error
  drain --path P
                raw frames: GET /echo on stream 1 (answered), then GET P on stream 3 and a
                PING; once the PING's ACK came (the server has taken stream 3 in), writes
                "sent 3" to --ready-file; reads until the connection ends: ping_acked, first
                (status of /echo), status, body (of stream 3), stream_ended, goaway, closed,
                events (in order: "goaway", "headers:ID", "end:ID", "reset:ID", "eof")
  upload --path P [--size N] [--wait S]
                raw frames: POST P without content-length, N bytes (at most the initial
                windows, 65535) in DATA frames, END_STREAM on the last of them, all in one
                write; waits up to S seconds for the answer: status, body, size, sha256 (of
                what was sent), stream_ended, events
  stall --stage magic|preface|headers [--path P] [--header "NAME: VALUE" ...] [--hangup]
        [--wait S]
                raw frames: the connection preface (magic: the 24 bytes alone, no SETTINGS and
                no ACK of the server's; preface: magic and SETTINGS), and with --stage headers
                a HEADERS frame of GET P with the given fields, END_STREAM but no END_HEADERS
                (a header block that never ends); then nothing more (with --hangup: our side
                shut down, a FIN); reads until the server closes or S seconds passed:
                first_frame, goaway, closed, close_kind, frames, waited (seconds, a fact for
                the messages)
  abrupt --count N [--wait S]
                N rounds of: one connection that writes the preface, SETTINGS and a GET in one
                write and closes at once without reading (a FIN on even rounds, a reset,
                SO_LINGER 0, on odd ones); then a fresh connection that waits up to S seconds
                for the server's first frame and, once it came, for the answer to a GET.
                Stops at the first round that failed: rounds [{round, first_frame, status,
                closed}], ok_rounds
  early-response --path P [--size N] [--wait S] [--after PATH]
                raw frames: POST P with content-length N and 65535 bytes of it (the initial
                windows), no END_STREAM, in one write; reads until the server resets stream
                1, or the close, or S seconds: status, body, end_by (the frame type that
                carried the response's END_STREAM), reset (error code name of the server's
                RST_STREAM on stream 1), events; then GET PATH (default /echo?after-early=1)
                on stream 3 of the same connection: after_status, after_body, goaway, closed
  raw-requests --plan JSON
                raw frames: the plan's requests (as for `requests`; HEADERS with END_STREAM)
                one after another on one connection: each answer's stream_id, status,
                headers, data_bytes (DATA payload received), end_by (HEADERS or DATA: the
                frame with END_STREAM), reset; goaway, closed
  made-you-reset --count N [--batch B] [--path P]
                raw frames: N times HEADERS of a POST P with content-length 1 and a DATA
                frame of 2 bytes with END_STREAM (a stream error the server has to answer
                with RST_STREAM on its own: "MadeYouReset", CVE-2025-8671), then one more GET
                (final), all in one write; with --batch, B streams per write, each write
                after the server reset the streams of the one before (or went away), so no
                more than B streams are open at once. Reads until the server closes or
                answers the final GET: final_status, goaway, closed, close_kind,
                server_resets, reset_codes ({name: count}), writes, frames, send_error
  websocket --path P [--scheme https|http] [--text T] [--after PATH]
                RFC 8441: extended CONNECT (:protocol websocket, sec-websocket-version 13);
                the response status and headers; then one masked text frame T sent as DATA
                and the frame read back from DATA (opcode, masked, text); then a masked close
                frame (1000, "h2 bye") and the close frame read back; then END_STREAM and
                waits for the stream's end (stream_ended, reset). Last, a plain GET of
                --after (default /echo?after-websocket=1) on the same connection
                (after_status): the connection outlives the tunnel
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import sys
import time
import traceback

import peerproc

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

TIMEOUT = 20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REPORT = {}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def error_name(code):
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return "0x%x" % code


def connect(args):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not args.tls:
        return sock
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.set_alpn_protocols(["h2"])
    if not args.name:
        ctx.check_hostname = False
    tls = ctx.wrap_socket(sock, server_hostname=args.name or None)
    REPORT["alpn"] = tls.selected_alpn_protocol()
    return tls


def authority(args):
    return args.authority or "%s:%d" % (args.name or "127.0.0.1", args.port)


def scheme(args):
    return "https" if args.tls else "http"


def recv_some(sock, deadline):
    """Bytes that arrived before `deadline` (b"" when nothing did), None on EOF or reset."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return sock.recv(65536)
    left = deadline - time.monotonic()
    if left <= 0:
        return b""
    readable, _, _ = select.select([sock], [], [], left)
    if not readable:
        return b""
    try:
        data = sock.recv(65536)
    except ssl.SSLWantReadError:
        return b""
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
        REPORT["close_kind"] = "reset: %r" % e
        return None
    if not data:
        REPORT["close_kind"] = "eof"
        return None
    return data


# -- raw frames ------------------------------------------------------------------------


class RawConn:
    """Frames written and read by hand (hyperframe, hpack): for what a well-behaved client
    library refuses to send."""

    def __init__(self, args, settings=True, ack=True):
        self.sock = connect(args)
        self.ack = ack     # answer the server's SETTINGS with an ACK
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.buf = b""
        self.closed = False
        self.goaway = None
        self.responses = []
        self.server_resets = 0
        self.block = None  # (stream id, fragments) of a server header block in progress
        self.frames = []   # types of the frames received, in order
        self.events = []   # "goaway", "headers:ID", "end:ID", "reset:ID", "eof", in order
        self.bodies = {}   # stream id -> DATA received
        self.ping_acks = []  # opaque data of the PING ACKs received
        self.reset_codes = {}  # stream id -> error code name of the server's RST_STREAM
        self.end_by = {}   # stream id -> type of the frame that carried END_STREAM
        self.sendall(PREFACE + SettingsFrame(0).serialize() if settings else PREFACE)

    def sendall(self, data):
        self.sock.sendall(data)

    def next_frame(self, deadline):
        """One frame, or None at EOF or the deadline."""
        while True:
            if len(self.buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    frame.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    self.note(frame)
                    return frame
            if self.closed:
                return None
            data = recv_some(self.sock, deadline)
            if data is None:
                self.closed = True
                self.events.append("eof")
            elif data == b"":
                return None
            else:
                self.buf += data

    def note(self, frame):
        self.frames.append(frame.type)
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags and self.ack:
            try:
                self.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            except OSError:
                pass
        elif isinstance(frame, GoAwayFrame):
            self.goaway = {"error_code": error_name(frame.error_code), "last_stream_id": frame.last_stream_id,
                           "debug": frame.additional_data.decode("latin-1")}
            self.events.append("goaway")
        elif isinstance(frame, PingFrame) and "ACK" in frame.flags:
            self.ping_acks.append(bytes(frame.opaque_data))
        elif isinstance(frame, RstStreamFrame):
            self.server_resets += 1
            self.reset_codes[frame.stream_id] = error_name(frame.error_code)
            self.events.append("reset:%d" % frame.stream_id)
        elif isinstance(frame, DataFrame):
            self.bodies[frame.stream_id] = self.bodies.get(frame.stream_id, b"") + frame.data
            if frame.flow_controlled_length:
                try:  # the connection's window (bodies here are small: the streams' suffice)
                    self.sendall(WindowUpdateFrame(0, window_increment=frame.flow_controlled_length).serialize())
                except OSError:
                    pass
        elif isinstance(frame, (HeadersFrame, ContinuationFrame)):
            if isinstance(frame, HeadersFrame):
                self.block = (frame.stream_id, [frame.data])
            elif self.block:
                self.block[1].append(frame.data)
            if "END_HEADERS" in frame.flags and self.block:
                headers = self.decoder.decode(b"".join(self.block[1]), raw=True)
                self.responses.append({"stream_id": self.block[0],
                                       "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]})
                self.events.append("headers:%d" % self.block[0])
                self.block = None
        if isinstance(frame, (HeadersFrame, DataFrame)) and "END_STREAM" in frame.flags:
            self.end_by[frame.stream_id] = type(frame).__name__
            self.events.append("end:%d" % frame.stream_id)

    def read_until_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.next_frame(deadline)

    def request_block(self, args, path, extra=()):
        return self.encoder.encode([(":method", "GET"), (":scheme", scheme(args)), (":path", path),
                                    (":authority", authority(args))] + list(extra))

    def status_of(self, stream_id):
        for r in self.responses:
            if r["stream_id"] == stream_id:
                for k, v in r["headers"]:
                    if k == ":status":
                        return int(v)
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def scenario_settings(args):
    raw = RawConn(args)
    frame = raw.next_frame(time.monotonic() + TIMEOUT)
    REPORT["first_frame"] = type(frame).__name__ if frame else None
    if isinstance(frame, SettingsFrame):
        REPORT["settings"] = {str(k): v for k, v in frame.settings.items()}
    raw.close()


def scenario_rapid_reset(args):
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS first: the session is up
    frames = []
    for i in range(args.count):
        sid = 1 + 2 * i
        frames.append(HeadersFrame(sid, raw.request_block(args, "/echo?rapid=%d" % i),
                                   flags=["END_HEADERS", "END_STREAM"]).serialize())
        frames.append(RstStreamFrame(sid, error_code=8).serialize())  # CANCEL
    final = 1 + 2 * args.count
    frames.append(HeadersFrame(final, raw.request_block(args, "/echo?after-resets=1"),
                               flags=["END_HEADERS", "END_STREAM"]).serialize())
    try:
        # One write: the server reads it all before it gives up, so its close is a FIN, and
        # the GOAWAY in front of it is not lost to a TCP reset.
        raw.sendall(b"".join(frames))
    except OSError as e:
        REPORT["send_error"] = repr(e)
    REPORT["resets_sent"] = args.count
    deadline = time.monotonic() + 10
    while not raw.closed and raw.status_of(final) is None and time.monotonic() < deadline:
        raw.next_frame(deadline)
    REPORT.update({"final_stream_id": final, "final_status": raw.status_of(final), "goaway": raw.goaway, "closed": raw.closed, "responses": len(raw.responses),
                   "server_resets": raw.server_resets, "frames": raw.frames})
    raw.close()


def scenario_continuation(args):
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    n = args.frames
    block = raw.request_block(args, "/echo?continuations=%d" % n,
                              [("x-c%02d" % i, "v" * 8) for i in range(n + 1)])
    step = len(block) // (n + 1)
    pieces = [block[i * step:(i + 1) * step] for i in range(n)] + [block[n * step:]]
    frames = [HeadersFrame(1, pieces[0], flags=["END_STREAM"] if n else ["END_STREAM", "END_HEADERS"]).serialize()]
    for i, piece in enumerate(pieces[1:], start=1):
        frames.append(ContinuationFrame(1, piece, flags=["END_HEADERS"] if i == n else []).serialize())
    try:
        raw.sendall(b"".join(frames))  # one write: nothing left unread when the server gives up
    except OSError as e:
        REPORT["send_error"] = repr(e)
    REPORT["frames_sent"] = len(frames)
    deadline = time.monotonic() + 10
    while not raw.closed and time.monotonic() < deadline:
        raw.next_frame(deadline)
        if raw.status_of(1) is not None and raw.goaway is None:
            break
    REPORT.update({"status": raw.status_of(1), "goaway": raw.goaway, "closed": raw.closed,
                   "server_resets": raw.server_resets, "frames": raw.frames})
    raw.close()


def scenario_upload(args):
    # Raw frames, so where END_STREAM goes is ours to say: on the last DATA frame with bytes.
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    body = bytes((i * 7 + 3) & 0xFF for i in range(args.size))
    frames = [HeadersFrame(1, raw.encoder.encode([(":method", "POST"), (":scheme", scheme(args)), (":path", args.path),
                                                  (":authority", authority(args))]), flags=["END_HEADERS"]).serialize()]
    step = 16384  # the default SETTINGS_MAX_FRAME_SIZE; the whole body fits the initial windows
    for off in range(0, len(body), step):
        last = off + step >= len(body)
        frames.append(DataFrame(1, body[off:off + step], flags=["END_STREAM"] if last else []).serialize())
    raw.sendall(b"".join(frames))
    deadline = time.monotonic() + args.wait
    while "end:1" not in raw.events and not raw.closed and time.monotonic() < deadline:
        raw.next_frame(deadline)
    REPORT.update({"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "status": raw.status_of(1),
                   "body": raw.bodies.get(1, b"").decode("utf-8", "replace"), "stream_ended": "end:1" in raw.events,
                   "goaway": raw.goaway, "closed": raw.closed, "events": raw.events})
    raw.close()


def header_args(args):
    """--header "name: value" options as (name, value) pairs."""
    out = []
    for h in args.header:
        name, _, value = h.partition(":")
        out.append((name.strip().lower(), value.strip()))
    return out


def scenario_stall(args):
    magic = args.stage == "magic"
    raw = RawConn(args, settings=not magic, ack=not magic)
    first = raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    REPORT["first_frame"] = type(first).__name__ if first else None
    if args.stage == "headers":
        # END_STREAM, no END_HEADERS: the server now expects a CONTINUATION that never comes.
        raw.sendall(HeadersFrame(1, raw.request_block(args, args.path, header_args(args)), flags=["END_STREAM"]).serialize())
    if args.hangup:
        raw.sock.shutdown(socket.SHUT_WR)
    sent = time.monotonic()
    raw.read_until_closed(args.wait)
    REPORT.update({"goaway": raw.goaway, "closed": raw.closed, "close_kind": REPORT.get("close_kind"),
                   "frames": raw.frames, "events": raw.events, "waited": round(time.monotonic() - sent, 3)})
    raw.close()


def scenario_abrupt(args):
    rounds = []
    REPORT["rounds"] = rounds
    for i in range(args.count):
        sock = connect(args)
        encoder = hpack.Encoder()
        block = encoder.encode([(":method", "GET"), (":scheme", scheme(args)), (":path", "/echo?abrupt=%d" % i),
                                (":authority", authority(args))])
        if i % 2:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.sendall(PREFACE + SettingsFrame(0).serialize()
                         + HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        finally:
            sock.close()
        # Pacing, not a measurement: the server takes the close in before the next client comes.
        time.sleep(0.05)
        fresh = RawConn(args)
        deadline = time.monotonic() + args.wait
        frame = fresh.next_frame(deadline)
        r = {"round": i, "first_frame": type(frame).__name__ if frame else None, "status": None}
        if frame is not None:
            fresh.sendall(HeadersFrame(1, fresh.request_block(args, "/echo?fresh=%d" % i),
                                       flags=["END_HEADERS", "END_STREAM"]).serialize())
            deadline = time.monotonic() + args.wait
            while "end:1" not in fresh.events and not fresh.closed and time.monotonic() < deadline:
                fresh.next_frame(deadline)
            r["status"] = fresh.status_of(1)
        r["closed"] = fresh.closed
        fresh.close()
        rounds.append(r)
        if r["first_frame"] != "SettingsFrame" or r["status"] != 200:
            break
    REPORT["ok_rounds"] = sum(1 for r in rounds if r["first_frame"] == "SettingsFrame" and r["status"] == 200)


def scenario_early_response(args):
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    frames = [HeadersFrame(1, raw.encoder.encode([(":method", "POST"), (":scheme", scheme(args)), (":path", args.path),
                                                  (":authority", authority(args)), ("content-length", str(args.size))]),
                           flags=["END_HEADERS"]).serialize()]
    window = min(65535, args.size - 1)  # the initial windows: all a client may send unasked
    chunk = b"u" * 16384
    sent = 0
    while sent < window:
        n = min(16384, window - sent)
        frames.append(DataFrame(1, chunk[:n]).serialize())
        sent += n
    raw.sendall(b"".join(frames))
    REPORT["body_sent"] = sent
    deadline = time.monotonic() + args.wait
    while "reset:1" not in raw.events and not raw.closed and time.monotonic() < deadline:
        raw.next_frame(deadline)
    REPORT.update({"status": raw.status_of(1), "body": raw.bodies.get(1, b"").decode("utf-8", "replace"),
                   "end_by": raw.end_by.get(1), "reset": raw.reset_codes.get(1), "events": list(raw.events)})
    if not raw.closed:
        raw.sendall(HeadersFrame(3, raw.request_block(args, args.after), flags=["END_HEADERS", "END_STREAM"]).serialize())
        deadline = time.monotonic() + args.wait
        while "end:3" not in raw.events and "reset:3" not in raw.events and not raw.closed and time.monotonic() < deadline:
            raw.next_frame(deadline)
    REPORT.update({"after_status": raw.status_of(3), "after_body": raw.bodies.get(3, b"").decode("utf-8", "replace"),
                   "goaway": raw.goaway, "closed": raw.closed, "all_events": raw.events})
    raw.close()


def scenario_raw_requests(args):
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    out = []
    REPORT["responses"] = out
    for i, item in enumerate(json.loads(args.plan)):
        sid = 1 + 2 * i
        fields = [(":method", item.get("method", "GET")), (":scheme", scheme(args)), (":path", item["path"]),
                  (":authority", item.get("authority") or authority(args))] + [tuple(h) for h in item.get("headers", [])]
        raw.sendall(HeadersFrame(sid, raw.encoder.encode(fields), flags=["END_HEADERS", "END_STREAM"]).serialize())
        deadline = time.monotonic() + TIMEOUT
        while ("end:%d" % sid) not in raw.events and ("reset:%d" % sid) not in raw.events and not raw.closed \
                and time.monotonic() < deadline:
            raw.next_frame(deadline)
        headers = next((r["headers"] for r in raw.responses if r["stream_id"] == sid), [])
        out.append({"stream_id": sid, "status": raw.status_of(sid), "headers": headers,
                    "data_bytes": len(raw.bodies.get(sid, b"")), "body": raw.bodies.get(sid, b"").decode("utf-8", "replace"),
                    "end_by": raw.end_by.get(sid), "reset": raw.reset_codes.get(sid)})
    REPORT.update({"goaway": raw.goaway, "closed": raw.closed})
    raw.close()


def scenario_made_you_reset(args):
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS first: the session is up
    batch = args.batch or args.count
    final = 1 + 2 * args.count
    writes = 0
    sent = 0
    for start in range(0, args.count, batch):
        if raw.closed or raw.goaway is not None:
            break
        frames = []
        for i in range(start, min(start + batch, args.count)):
            sid = 1 + 2 * i
            fields = [(":method", "POST"), (":scheme", scheme(args)), (":path", "%s?myr=%d" % (args.path, i)),
                      (":authority", authority(args)), ("content-length", "1")]
            frames.append(HeadersFrame(sid, raw.encoder.encode(fields), flags=["END_HEADERS"]).serialize())
            frames.append(DataFrame(sid, b"xy", flags=["END_STREAM"]).serialize())  # 2 bytes where 1 was announced
        last = start + batch >= args.count
        if last:
            frames.append(HeadersFrame(final, raw.request_block(args, "/echo?after-made-you-reset=1"),
                                       flags=["END_HEADERS", "END_STREAM"]).serialize())
        try:
            raw.sendall(b"".join(frames))  # one write per batch, as in rapid-reset
        except OSError as e:
            REPORT["send_error"] = repr(e)
            break
        writes += 1
        sent = min(start + batch, args.count)
        if not last:
            # The server's resets of this batch before the next: never more than `batch` open.
            want = min(start + batch, args.count)
            deadline = time.monotonic() + 10
            while raw.server_resets < want and not raw.closed and raw.goaway is None and time.monotonic() < deadline:
                raw.next_frame(deadline)
    REPORT["streams_sent"] = sent
    REPORT["writes"] = writes
    deadline = time.monotonic() + 10
    while not raw.closed and raw.status_of(final) is None and time.monotonic() < deadline:
        raw.next_frame(deadline)
    codes = {}
    for code in raw.reset_codes.values():
        codes[code] = codes.get(code, 0) + 1
    REPORT.update({"final_stream_id": final, "final_status": raw.status_of(final), "goaway": raw.goaway,
                   "closed": raw.closed, "close_kind": REPORT.get("close_kind"), "server_resets": raw.server_resets,
                   "reset_codes": codes, "frames": raw.frames})
    raw.close()


# -- the h2 state machine -----------------------------------------------------------------


class Client:
    """A well-behaved client on h2.connection.H2Connection."""

    def __init__(self, args):
        self.args = args
        self.sock = connect(args)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams = {}
        self.goaway = None
        self.closed = False
        self.events = []
        self.remote_settings = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def stream(self, sid):
        return self.streams.setdefault(sid, {"stream_id": sid, "status": None, "headers": [], "body": bytearray(),
                                             "ended": False, "reset": None})

    def pump(self, deadline):
        data = recv_some(self.sock, deadline)
        if data is None:
            if not self.closed:
                self.events.append("eof")
            self.closed = True
            return
        if not data:
            return
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                s = self.stream(ev.stream_id)
                s["headers"] = [[k, v] for k, v in ev.headers]
                s["status"] = int(dict(ev.headers)[":status"])
                self.events.append("headers:%d" % ev.stream_id)
            elif isinstance(ev, h2.events.DataReceived):
                self.stream(ev.stream_id)["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.stream(ev.stream_id)["ended"] = True
                self.events.append("end:%d" % ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.stream(ev.stream_id)["reset"] = error_name(ev.error_code)
                self.events.append("reset:%d" % ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = {"error_code": error_name(ev.error_code), "last_stream_id": ev.last_stream_id,
                               "debug": (ev.additional_data or b"").decode("latin-1")}
                self.events.append("goaway")
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.remote_settings = True
        try:
            self.flush()
        except OSError:
            pass

    def wait(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate() and not self.closed and time.monotonic() < deadline:
            self.pump(deadline)
        return predicate()

    def done(self, sid):
        s = self.stream(sid)
        return s["ended"] or s["reset"] is not None

    def request(self, path, method="GET", authority=None, headers=()):
        sid = self.conn.get_next_available_stream_id()
        self.stream(sid)
        self.conn.send_headers(sid, [(":method", method), (":scheme", scheme(self.args)), (":path", path),
                                     (":authority", authority or globals()["authority"](self.args))] + list(headers),
                               end_stream=True)
        self.flush()
        return sid

    def result(self, sid):
        s = self.stream(sid)
        return {"stream_id": sid, "status": s["status"], "headers": s["headers"],
                "body": bytes(s["body"][:4096]).decode("utf-8", "replace"), "body_length": len(s["body"]),
                "ended": s["ended"], "reset": s["reset"]}

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def scenario_requests(args):
    c = Client(args)
    out = []
    REPORT["responses"] = out
    for item in json.loads(args.plan):
        sid = c.request(item["path"], item.get("method", "GET"), item.get("authority"),
                        [tuple(h) for h in item.get("headers", [])])
        c.wait(lambda: c.done(sid))
        out.append(c.result(sid))
    REPORT.update({"goaway": c.goaway, "closed": c.closed})
    c.close()


def scenario_trailers(args):
    """POST --path with a body and then a trailer section (--header name:value, repeatable),
    with or without content-length (--size 0: none); reports the response."""
    c = Client(args)
    sid = c.conn.get_next_available_stream_id()
    c.stream(sid)
    body = b"x" * 1000
    headers = [(":method", "POST"), (":scheme", scheme(args)), (":path", args.path), (":authority", authority(args))]
    if args.size:
        headers.append(("content-length", str(len(body))))
    c.conn.send_headers(sid, headers, end_stream=False)
    c.conn.send_data(sid, body)
    c.conn.send_headers(sid, [tuple(h.split(":", 1)) for h in args.header], end_stream=True)
    c.flush()
    c.wait(lambda: c.done(sid))
    REPORT.update(c.result(sid))
    c.close()


def scenario_drain(args):
    # Raw frames: the h2 library treats a received GOAWAY as the end of the connection and
    # rejects the frames of streams still running, which is what this scenario is about.
    raw = RawConn(args)
    raw.next_frame(time.monotonic() + 5)  # the server's SETTINGS
    raw.sendall(HeadersFrame(1, raw.request_block(args, "/echo?before-drain=1"),
                             flags=["END_HEADERS", "END_STREAM"]).serialize())
    deadline = time.monotonic() + TIMEOUT
    while "end:1" not in raw.events and not raw.closed and time.monotonic() < deadline:
        raw.next_frame(deadline)
    REPORT["first"] = raw.status_of(1)
    # A PING behind the request: the server handles frames in order, so its ACK means the
    # request's HEADERS were taken in (the stream is open and on its way upstream).
    raw.sendall(HeadersFrame(3, raw.request_block(args, args.path), flags=["END_HEADERS", "END_STREAM"]).serialize()
                + PingFrame(0, opaque_data=b"drain-3!").serialize())
    while b"drain-3!" not in raw.ping_acks and not raw.closed and time.monotonic() < deadline:
        raw.next_frame(deadline)
    REPORT["ping_acked"] = b"drain-3!" in raw.ping_acks
    if args.ready_file:
        peerproc.write_ready(args.ready_file, "sent 3")
    raw.read_until_closed(TIMEOUT)
    REPORT.update({"stream_id": 3, "status": raw.status_of(3), "body": raw.bodies.get(3, b"").decode("utf-8", "replace"),
                   "stream_ended": "end:3" in raw.events, "goaway": raw.goaway, "closed": raw.closed,
                   "events": raw.events})
    raw.close()


# -- WebSocket over HTTP/2 (RFC 8441) -------------------------------------------------------


def ws_frame(opcode, payload):
    """A client frame: FIN, masked (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buf):
    """(frame, rest) for one complete frame at the front of buf, else (None, buf)."""
    if len(buf) < 2:
        return None, buf
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    i = 2
    if n == 126:
        if len(buf) < 4:
            return None, buf
        n = struct.unpack("!H", buf[2:4])[0]
        i = 4
    elif n == 127:
        if len(buf) < 10:
            return None, buf
        n = struct.unpack("!Q", buf[2:10])[0]
        i = 10
    masked = bool(b1 & 0x80)
    mask = b""
    if masked:
        mask = buf[i:i + 4]
        i += 4
    if len(buf) < i + n:
        return None, buf
    payload = bytes(buf[i:i + n])
    if masked:
        payload = bytes(b ^ mask[j % 4] for j, b in enumerate(payload))
    return {"fin": bool(b0 & 0x80), "opcode": b0 & 0x0F, "masked": masked, "payload": payload}, bytes(buf[i + n:])


def scenario_websocket(args):
    c = Client(args)
    c.wait(lambda: c.remote_settings, timeout=5)
    REPORT["server_enable_connect_protocol"] = c.conn.remote_settings.enable_connect_protocol
    sid = c.conn.get_next_available_stream_id()
    c.stream(sid)
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", args.scheme or scheme(args)),
                              (":path", args.path), (":authority", authority(args)), ("sec-websocket-version", "13")],
                        end_stream=False)
    c.flush()
    c.wait(lambda: c.stream(sid)["status"] is not None or c.done(sid))
    s = c.stream(sid)
    REPORT.update({"stream_id": sid, "status": s["status"], "headers": s["headers"]})
    if s["status"] != 200 or c.done(sid):
        REPORT.update({"stream_ended": s["ended"], "reset": s["reset"], "body": bytes(s["body"]).decode("utf-8", "replace")})
        return

    def read_frame():
        got = {}

        def ready():
            frame, rest = ws_parse(s["body"])
            if frame:
                s["body"] = bytearray(rest)
                got["frame"] = frame
            return "frame" in got
        c.wait(ready)
        f = got.get("frame")
        if f is None:
            return None
        info = {"opcode": f["opcode"], "fin": f["fin"], "masked": f["masked"], "length": len(f["payload"])}
        if f["opcode"] == 1:
            info["text"] = f["payload"].decode("utf-8", "replace")
        elif f["opcode"] == 8:
            info["code"] = struct.unpack("!H", f["payload"][:2])[0] if len(f["payload"]) >= 2 else None
            info["reason"] = f["payload"][2:].decode("utf-8", "replace")
        return info

    c.conn.send_data(sid, ws_frame(1, args.text.encode()))
    c.flush()
    REPORT["echo"] = read_frame()
    c.conn.send_data(sid, ws_frame(8, struct.pack("!H", 1000) + b"h2 bye"))
    c.flush()
    REPORT["close"] = read_frame()
    c.conn.end_stream(sid)
    c.flush()
    c.wait(lambda: c.done(sid))
    REPORT.update({"stream_ended": s["ended"], "reset": s["reset"], "extra_bytes": len(s["body"])})
    after = c.request(args.after)
    c.wait(lambda: c.done(after))
    REPORT["after_status"] = c.stream(after)["status"]
    REPORT.update({"goaway": c.goaway, "closed": c.closed, "events": c.events})
    c.close()


SCENARIOS = {
    "settings": scenario_settings,
    "requests": scenario_requests,
    "rapid-reset": scenario_rapid_reset,
    "continuation": scenario_continuation,
    "drain": scenario_drain,
    "upload": scenario_upload,
    "websocket": scenario_websocket,
    "stall": scenario_stall,
    "abrupt": scenario_abrupt,
    "early-response": scenario_early_response,
    "raw-requests": scenario_raw_requests,
    "made-you-reset": scenario_made_you_reset,
    "trailers": scenario_trailers,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--name")
    ap.add_argument("--cafile")
    ap.add_argument("--authority")
    ap.add_argument("--plan", default="[]")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--path", default="/")
    ap.add_argument("--size", type=int, default=60000)
    ap.add_argument("--wait", type=float, default=10)
    ap.add_argument("--scheme")
    ap.add_argument("--text", default="hello over h2")
    ap.add_argument("--after")  # default: per scenario (see above)
    ap.add_argument("--stage", choices=["magic", "preface", "headers"], default="headers")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--hangup", action="store_true")
    ap.add_argument("--batch", type=int, default=0)
    peerproc.add_arguments(ap)
    args = ap.parse_args()
    peerproc.watch_parent(args.parent)
    if args.after is None:
        args.after = "/echo?after-early=1" if args.scenario == "early-response" else "/echo?after-websocket=1"
    REPORT["scenario"] = args.scenario
    try:
        SCENARIOS[args.scenario](args)
    except Exception:
        REPORT["error"] = traceback.format_exc()
    emit(REPORT)


if __name__ == "__main__":
    main()
