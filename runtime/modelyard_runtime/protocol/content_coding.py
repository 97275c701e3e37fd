"""Request bodies with a ``Content-Encoding``: gzip and deflate, inflated in bounded steps.

aiohttp would inflate a body as it arrives, on the event loop, and keep inflating a compression
bomb after its 413; so the server reads the compressed bytes and inflates them here instead.
``Inflater.step`` produces at most a given number of bytes, so the caller inflates a small body
on the loop and hands a large one to a thread; it stops one byte past the body limit (413), and a
body that does not decode is a 400. An unknown coding is a 415. Pure: no I/O, no aiohttp.
"""

from __future__ import annotations

import zlib
from typing import Final

from modelyard_runtime.errors import (
    MalformedBodyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

_GZIP: Final = 16 + zlib.MAX_WBITS
_ZLIB: Final = zlib.MAX_WBITS
_RAW_DEFLATE: Final = -zlib.MAX_WBITS
_STEP: Final = 1 << 20  # output per zlib call: bounds the memory of one call


def coding(header: str | None) -> str | None:
    """The body's one content coding (``gzip`` or ``deflate``); None for none or identity."""
    if header is None:
        return None
    names = [part.strip().lower() for part in header.split(",") if part.strip()]
    names = [name for name in names if name != "identity"]
    if not names:
        return None
    if len(names) > 1:
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {header!r}: only one content coding (gzip or deflate) is supported"
        )
    name = "gzip" if names[0] == "x-gzip" else names[0]
    if name not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {names[0]!r} is not supported: send gzip, deflate or identity"
        )
    return name


def _wbits(name: str, data: bytes) -> int:
    if name == "gzip":
        return _GZIP
    # HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate (as browsers accept).
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return _ZLIB if zlib_header else _RAW_DEFLATE


class Inflater:
    """Inflates one body of ``name`` coding, at most ``limit`` bytes of it."""

    def __init__(self, name: str, data: bytes, limit: int) -> None:
        self._name = name
        self._limit = limit
        self._decompressor = zlib.decompressobj(_wbits(name, data))
        self._tail = data
        self._parts: list[bytes] = []
        self._size = 0
        self.done = False

    def step(self, budget: int | None = None) -> None:
        """Inflate up to ``budget`` more bytes (None: to the end). ``PayloadTooLargeError`` past
        the limit, ``MalformedBodyError`` when the data is not valid ``gzip``/``deflate``."""
        produced = 0
        decompressor = self._decompressor
        while not self.done and (budget is None or produced < budget):
            room = self._limit + 1 - self._size
            want = min(_STEP, room) if budget is None else min(_STEP, room, budget - produced)
            try:
                chunk = decompressor.decompress(self._tail, want)
            except zlib.error as e:
                raise MalformedBodyError(
                    f"the body is not valid {self._name} data (Content-Encoding): {e}"
                ) from e
            consumed = len(self._tail) - len(decompressor.unconsumed_tail)
            self._tail = decompressor.unconsumed_tail
            self._parts.append(chunk)
            self._size += len(chunk)
            produced += len(chunk)
            if self._size > self._limit:
                raise PayloadTooLargeError(
                    f"request body inflates to more than the {self._limit}-byte limit"
                )
            if decompressor.eof:
                if decompressor.unused_data:
                    raise MalformedBodyError(
                        f"the body has data after the end of its {self._name} stream"
                    )
                self.done = True
            elif not chunk and not consumed:
                raise MalformedBodyError(f"the {self._name} body is truncated")

    def result(self) -> bytes:
        """The inflated body, once ``done``."""
        if not self.done:
            raise RuntimeError("the body is not inflated yet")
        return b"".join(self._parts)
