#!/usr/bin/env python3
"""The layering of DESIGN.md, checked on every `make test` (and `make check`):

1. Each module imports only what its layer allows (Sources/<Module>/*.swift `import` lines).
2. Package.swift's target dependencies say the same (no module links what it may not import).
3. Socket, pipe and eventfd system calls appear only in IOCore's Sys files, the one door to
   the kernel (STYLE.md point 1).

Exit 1 with one line per violation; 0 and a one-line summary otherwise.
"""
import json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM = {"Glibc", "Synchronization"}

# module -> modules it may import (besides SYSTEM). Foundation only where it says so: it stays
# out of everything under ProxyEngine's hot path.
ALLOWED = {
    "CLinux": set(), "COpenSSL": set(), "CNghttp2": set(), "CSQLite": set(),
    "IOCore": {"CLinux"},
    "HTTP1Codec": set(),
    "RouteResolver": {"HTTP1Codec"},                      # pure logic: no sockets, no database
    "RegistryStore": {"RouteResolver", "CSQLite"},
    "TLSTerminator": {"COpenSSL", "IOCore"},                # TLS bytes pass through Sys
    "ProxyEngine": {"CLinux", "CNghttp2", "IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator"},
    "AdminPlane": {"Foundation", "IOCore", "HTTP1Codec", "RouteResolver"},   # never ProxyEngine
    "switchyard": None,                                   # the executable wires everything
}

# Calls that open, move or configure sockets, pipes and event fds.
SYSCALL = re.compile(
    r"(?:\bGlibc\.|(?<![\w.]))(socket|bind|listen|accept4?|connect|recv|recvfrom|recvmsg|send|sendto|sendmsg|"
    r"setsockopt|getsockopt|shutdown|splice|pipe2?|eventfd)\s*\("
    r"|\bcl_(recv|send|sendmsg|accept4|socket_stream|set_reuseport|set_nodelay|set_keepalive|so_error|splice|pipe|eventfd)\s*\(")
SYS_FILES = re.compile(r"^Sources/IOCore/Sys(\+\w+)?\.swift$")


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


def main():
    problems = []
    modules = sorted(d for d in os.listdir(os.path.join(ROOT, "Sources")) if os.path.isdir(os.path.join(ROOT, "Sources", d)))
    for m in modules:
        if m not in ALLOWED:
            problems.append(f"Sources/{m}: a module this check does not know; add its layer to scripts/check-layers.py")
    for m, allowed in ALLOWED.items():
        for path in swift_files(m):
            for n, line in code_lines(path):
                imp = re.match(r"\s*(?:@\w+\s+)*import\s+(?:(?:struct|class|enum|func|protocol)\s+)?(\w+)", line)
                if imp and allowed is not None and imp.group(1) not in allowed | SYSTEM:
                    problems.append(f"{path}:{n}: {m} may not import {imp.group(1)}")
                if not SYS_FILES.match(path):
                    for call in SYSCALL.finditer(line):
                        name = call.group(1) or "cl_" + call.group(2)
                        # A method of our own (`func connect(to:)`, `send(.error(...))`, `close()`)
                        # is not the syscall: those take positional fds, never a label, a
                        # leading dot or nothing.
                        rest = line[call.start():]
                        if call.group(1) and not rest.startswith("Glibc.") and (
                                re.search(r"\b(func|case)\s+$", line[:call.start()])
                                or re.match(r"\w+\s*\(\s*(\)|\.|\w+\s*:)", rest)):
                            continue
                        problems.append(f"{path}:{n}: {name}() outside IOCore's Sys: go through the one door to the kernel")

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
    print(f"check-layers: {len(ALLOWED)} modules keep their layers; socket calls only in IOCore's Sys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
