"""A progress bar on stderr for the long table operations: initialising, saving, loading and
quantizing tables of about a gigabyte or more.

The bar is drawn only when it can help someone watching: stderr is a terminal and the work is
large (``MIN_BYTES``). ``EMBEDDING_NATIVE_PROGRESS=0`` turns it off everywhere, ``=1`` draws it
even when stderr is not a terminal (a log file then gets one line per update, each ending in a
carriage return); unset or ``auto`` is the default rule. The bar is redrawn at most every
``_REDRAW_SECONDS`` and costs nothing measurable next to the work it reports (one ``time`` call
per block of megabytes).
"""

import os
import sys
import time

#: Work smaller than this is never reported (about a gigabyte of table bytes).
MIN_BYTES = 1 << 30
_REDRAW_SECONDS = 0.2
_BAR_WIDTH = 30
_SETTING = "EMBEDDING_NATIVE_PROGRESS"


def _wanted(total_bytes, stream):
    setting = os.environ.get(_SETTING, "auto").strip().lower()
    if setting in ("0", "off", "false", "no"):
        return False
    if setting in ("1", "on", "true", "yes"):
        return True
    if setting not in ("", "auto"):
        raise ValueError(f"{_SETTING} must be 0, 1 or auto, got {os.environ[_SETTING]!r}")
    if total_bytes < MIN_BYTES:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``with Progress("saving items.npy", total_bytes) as progress: ... progress.advance(n)``.

    Silent (and nearly free) unless :func:`_wanted` says otherwise; the final line says how long
    the work took and ends with a newline, also when the work stops with an exception.
    """

    def __init__(self, label, total_bytes, stream=None):
        self._label = label
        self._total = max(int(total_bytes), 0)
        self._stream = stream if stream is not None else sys.stderr
        self._active = _wanted(self._total, self._stream)
        self._done = 0
        self._start = self._drawn = 0.0

    def __enter__(self):
        if self._active:
            self._start = time.monotonic()
            self._draw(self._start)
        return self

    def advance(self, nbytes):
        self._done += nbytes
        if self._active:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_SECONDS:
                self._draw(now)

    def __exit__(self, kind, value, traceback):
        if self._active:
            self._draw(time.monotonic(), end="\n" if kind is None else " (stopped)\n")
        return False

    def _draw(self, now, end=""):
        self._drawn = now
        fraction = self._done / self._total if self._total else 1.0
        fraction = min(fraction, 1.0)
        filled = int(fraction * _BAR_WIDTH)
        elapsed = now - self._start
        rate = self._done / elapsed / (1 << 30) if elapsed > 0 else 0.0
        line = (f"\r{self._label}: [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {fraction * 100:5.1f}% "
                f"{self._done / (1 << 30):.2f}/{self._total / (1 << 30):.2f} GiB, {rate:.2f} GiB/s, {elapsed:.1f} s")
        self._stream.write(line + end)
        self._stream.flush()


def blocks(total, block):
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``block``; the last pair absorbs
    a remainder shorter than 16 (so a block never holds fewer than 16 items unless ``total`` does:
    torch's ``normal_`` draws in groups of 16, see ``torch._Table.reset_parameters``)."""
    start = 0
    while start < total:
        stop = start + block
        if total - stop < 16:
            stop = total
        yield start, stop
        start = stop
