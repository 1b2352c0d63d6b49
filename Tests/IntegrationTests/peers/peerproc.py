"""The process side every peer shares with the Swift harness (Scope.startPeer): the
--ready-file and --parent options, announcing the ports once they listen, leaving when the
test process is gone, and waiting until killed. Stdlib only; import sigreset before it."""
import os
import threading
import time


def add_arguments(ap, ready_required=False):
    """--ready-file PATH (where the ports go) and --parent PID (the test process)."""
    ap.add_argument("--ready-file", required=ready_required)
    ap.add_argument("--parent", type=int)


def write_ready(path, text):
    """Writes `text` and a newline to `path` atomically (via rename): the harness polls the
    file and must never read half of it."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)


def announce(ready_file, text):
    """The ports, to --ready-file (when given) and to stdout."""
    if ready_file:
        write_ready(ready_file, text)
    print(text, flush=True)


def _watch(ppid):
    while True:
        time.sleep(0.5)
        try:
            os.kill(ppid, 0)
        except OSError:
            os._exit(0)
        if os.getppid() != ppid:
            os._exit(0)


def watch_parent(ppid):
    """Exits (from a daemon thread) when the test process that started us is gone, so a
    crashed test leaves no orphans. Nothing when `ppid` is None."""
    if ppid:
        threading.Thread(target=_watch, args=(ppid,), daemon=True).start()


def wait_forever():
    """Blocks the main thread until the process is killed (Ctrl-C ends it quietly)."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
