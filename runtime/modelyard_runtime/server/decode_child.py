"""A child process that decodes one large request body: ``python -m
modelyard_runtime.server.decode_child``, started by ``server.decoding`` for each body of
``decode_process_bytes`` or more.

It reads from stdin a length-prefixed pickle of ``(decoder, args)``, then the body; writes to
stdout the pickle of ``(True, decoded)`` or ``(False, RuntimeServiceError)``; and exits. A fresh
interpreter that imports only the codecs (numpy, orjson): nothing of the server is copied into
it, and nothing of the body's parsing stays behind in the server.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any, Final

from modelyard_runtime.errors import RuntimeServiceError

HEADER: Final = struct.Struct("<Q")
NICENESS: Final = 10


def frame(decoder: Any, args: tuple[Any, ...], body: bytes) -> list[bytes]:
    """What the server writes to the child's stdin."""
    call = pickle.dumps((decoder, args), protocol=pickle.HIGHEST_PROTOCOL)
    return [HEADER.pack(len(call)), call, body]


def main() -> int:
    os.nice(NICENESS)  # the server's event loop comes first
    data = sys.stdin.buffer.read()
    (length,) = HEADER.unpack_from(data)
    decoder, args = pickle.loads(data[HEADER.size : HEADER.size + length])  # noqa: S301 - from the server itself
    body = data[HEADER.size + length :]
    del data
    try:
        result: tuple[bool, Any] = (True, decoder(body, *args))
    except RuntimeServiceError as e:
        result = (False, e)
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
