"""Imported first by every peer: the test runner starts peers with SIGTERM and SIGINT blocked
(children inherit the signal mask), so `Child.stop()`'s SIGTERM would wait out its grace period
and end in SIGKILL. Unblock them and restore the default actions."""
import signal

signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)
