#!/usr/bin/env python3
"""The layering of DESIGN.md, checked on every `make test` (and `make check`):

1. Each module imports only what its layer allows (Sources/<Module>/*.swift `import` lines).
2. Package.swift's target dependencies say the same (no module links what it may not import).
3. Socket, pipe and eventfd system calls appear only in IOCore's Sys files, the one door to
   the kernel (STYLE.md point 1).
4. In ProxyEngine a connection's socket is closed in one place, Pollable.closeSocket; the other
   closes are the worker's own descriptors (epoll, listeners) and the tunnel's pipes.

Exit 1 with one line per violation; 0 and a one-line summary otherwise.
"""
import json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM = {"Glibc", "Synchronization"}

# module -> modules it may import (besides SYSTEM). Foundation only where it says so: it stays
# out of everything under ProxyEngine's hot path.
ALLOWED = {
    "CLinux": set(), "COpenSSL": set(), "CNghttp2": set(), "CSQLite": set(), "CLibpq": set(),
    "IOCore": {"CLinux"},
    "HTTP1Codec": set(),
    "RouteResolver": {"HTTP1Codec"},                      # pure logic: no sockets, no database
    "RegistryStore": {"RouteResolver", "CSQLite", "CLibpq"},
    "TLSTerminator": {"COpenSSL", "IOCore"},                # TLS bytes pass through Sys
    "H2Wire": {"CNghttp2", "IOCore"},                       # nghttp2's output into pooled buffers
    # The ClientHello peek and (later) the reverse tunnels; DESIGN.md puts it above ProxyEngine's
    # layers, so it may use IOCore and the codecs. Foundation stays out: it is on the TLS path.
    # The edge agent (Agent/) runs its own epoll loop with nghttp2 and a TLS client; sockets
    # still go through IOCore's Sys.
    "EdgeTunnel": {"CLinux", "CNghttp2", "IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator", "H2Wire"},
    # EdgeTunnel's protocol parts (the ClientHello parser) run inside the workers' loops: the
    # cluster side of a tunnel is a connection of a worker like any other (docs/edge-tunnel.md).
    "ProxyEngine": {"CLinux", "CNghttp2", "IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator", "EdgeTunnel", "H2Wire"},
    # never ProxyEngine; TLSTerminator for its Digest (edge tokens are kept hashed)
    "AdminPlane": {"Foundation", "IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator"},
    "switchyard": None,                                   # the executable wires everything
}

# Calls that open, move or configure sockets, pipes and event fds. read(2)/write(2)/close(2) are
# not listed: files (the access log, the admin token file) use them legitimately; socket bytes
# are recv/send/splice/sendmsg here, which are.
SYSCALL = re.compile(
    r"(?:\b(\w+)\.)?\b(socket|bind|listen|accept4?|connect|recv|recvfrom|recvmsg|recvmmsg|send|sendto|sendmsg|"
    r"sendmmsg|readv|writev|setsockopt|getsockopt|shutdown|splice|pipe2?|eventfd)\s*\("
    r"|\bcl_(recv|send|sendmsg|accept4|socket_stream|set_reuseport|set_nodelay|set_keepalive|so_error|splice|pipe|eventfd)\s*\(")
# Qualifiers that name the C library itself (anything else before a dot is one of our values).
C_MODULES = {"Glibc", "SwiftGlibc", "Foundation", "Musl", "Darwin", "CLinux"}
IMPORT = re.compile(r"\s*(?:@[\w()., ]+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+"
                    r"(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?(\w+)")
SYS_FILES = re.compile(r"^Sources/IOCore/Sys(\+\w+)?\.swift$")
CLOSE = re.compile(r"\b(?:Sys|Glibc|SwiftGlibc)\.close\s*\(")
# ProxyEngine files that may close descriptors, and what they close.
CLOSE_FILES = {"Pollable.swift": "the owned socket of a registration", "Worker.swift": "epoll fd and listeners",
               "TunnelLeg.swift": "pipes", "Worker+Edge.swift": "a socket handed to another worker that no worker took"}


def swift_files(module):
    base = os.path.join(ROOT, "Sources", module)
    for d, _, files in os.walk(base):
        for f in sorted(files):
            if f.endswith(".swift"):
                yield os.path.relpath(os.path.join(d, f), ROOT)


def code_lines(path):
    """Lines with comments and string literals blanked (enough for this check)."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    text = re.sub(r'"""[\s\S]*?"""', lambda m: "\n" * m.group(0).count("\n"), text)
    text = re.sub(r"/\*[\s\S]*?\*/", lambda m: "\n" * m.group(0).count("\n"), text)
    for n, line in enumerate(text.split("\n"), 1):
        line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
        yield n, line.split("//", 1)[0]


def line_problems(module, path, line):
    """What is wrong with one code line of `path` (in `module`)."""
    found = []
    allowed = ALLOWED.get(module)
    imp = IMPORT.match(line)
    if imp and allowed is not None and imp.group(1) not in allowed | SYSTEM:
        found.append(f"{module} may not import {imp.group(1)}")
    if SYS_FILES.match(path):
        return found
    if module == "ProxyEngine" and CLOSE.search(line) and os.path.basename(path) not in CLOSE_FILES:
        found.append("close() of a descriptor outside its owner: a connection's socket is closed by Pollable.closeSocket")
    for call in SYSCALL.finditer(line):
        qualifier, name = call.group(1), call.group(2) or "cl_" + call.group(3)
        if call.group(2):
            if qualifier and qualifier not in C_MODULES:
                continue  # `Sys.connect(...)`, `u.connect(to:)`: one of ours
            start = call.start(2)
            if not qualifier and start > 0 and line[start - 1] == ".":
                continue  # `.socket(fd)`: an enum case or a member, not a call
            # Unqualified: a method of our own (`func connect(to:)`, `send(.error(...))`,
            # `case socket(Int32)`) takes a label, a leading dot or nothing; syscalls take fds.
            if not qualifier and (re.search(r"\b(func|case)\s+$", line[:start])
                                  or re.match(r"\w+\s*\(\s*(\)|\.|\w+\s*:)", line[start:])):
                continue
        found.append(f"{name}() outside IOCore's Sys: go through the one door to the kernel")
    return found


def self_test():
    """The checker checks itself first, so a regex edit cannot quietly let violations through."""
    bad = [("AdminPlane", "import ProxyEngine"), ("AdminPlane", "package import ProxyEngine"),
           ("AdminPlane", "@_spi(Engine) import ProxyEngine"), ("RouteResolver", "import CSQLite"),
           ("ProxyEngine", "import Foundation"), ("ProxyEngine", "let r = Glibc.send(fd, p, n, 0)"),
           ("ProxyEngine", "_ = Foundation.recv(fd, p, n, 0)"), ("AdminPlane", "setsockopt(fd, 1, 2, &v, 4)"),
           ("ProxyEngine", "_ = cl_recv(fd, p, n)"), ("ProxyEngine", "_ = writev(fd, iov, 2)"),
           ("ProxyEngine", "Sys.close(fd)")]
    good = [("AdminPlane", "import var Glibc.errno"), ("ProxyEngine", "transport = .socket(-1)"),
            ("ProxyEngine", "case socket(Int32)"), ("ProxyEngine", "try u.connect(to: index)"),
            ("AdminPlane", "guard answer(response, close: last) else { return }"), ("ProxyEngine", "close()"),
            ("ProxyEngine", "let fd = try Sys.socket(family: f)"), ("AdminPlane", "func connect(to index: Int)"),
            ("AdminPlane", "Sys.close(client)")]
    wrong = [f"not flagged: {m}: {l}" for m, l in bad if not line_problems(m, f"Sources/{m}/X.swift", l)]
    wrong += [f"flagged wrongly: {m}: {l}" for m, l in good if line_problems(m, f"Sources/{m}/X.swift", l)]
    return wrong


def main():
    problems = self_test()
    modules = sorted(d for d in os.listdir(os.path.join(ROOT, "Sources")) if os.path.isdir(os.path.join(ROOT, "Sources", d)))
    for m in modules:
        if m not in ALLOWED:
            problems.append(f"Sources/{m}: a module this check does not know; add its layer to scripts/check-layers.py")
    for m in ALLOWED:
        for path in swift_files(m):
            for n, line in code_lines(path):
                problems += [f"{path}:{n}: {p}" for p in line_problems(m, path, line)]

    try:
        dump = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        targets = json.loads(dump)["targets"]
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        problems.append(f"Package.swift: cannot read the target graph ({e})")
        targets = []
    for t in targets:
        name = t["name"]
        if t.get("type") == "test" or name not in ALLOWED or ALLOWED[name] is None:
            continue
        for dep in t.get("dependencies", []):
            dname = (dep.get("byName") or dep.get("target") or dep.get("product") or [None])[0]
            if dname not in ALLOWED[name]:
                problems.append(f"Package.swift: {name} depends on {dname}, which its layer does not allow")

    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)")
        return 1
    print(f"check-layers: {len(ALLOWED)} modules keep their layers; socket calls only in IOCore's Sys; "
          "connection sockets closed by their owner")
    return 0


if __name__ == "__main__":
    sys.exit(main())
