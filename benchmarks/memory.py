"""Peak memory of a Ray program: the summed proportional set size (PSS: shared pages counted once) of this
process and every Ray process on the machine, sampled twice a second. Used by the benchmark scripts.

    with PeakMemory() as memory:
        run_stage()
    print(memory.peak / 2**20, "MB")
"""

from __future__ import annotations

import os
import threading

import psutil


def pss_bytes(pid: int) -> int:
    """Proportional set size from /proc/<pid>/smaps_rollup (cheap, unlike walking smaps)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Samples the summed PSS of this process and every Ray process on the machine, twice a second."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = 0
            for proc in psutil.process_iter(["pid", "name", "cmdline"]):
                try:
                    line = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["name"] or "")
                    if proc.info["pid"] == me or "ray" in line:
                        total += pss_bytes(proc.info["pid"])
                except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError, ProcessLookupError):
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
