"""The protocol-neutral data plane: what is served, whether it is ready, and one inference path.

Transports (``server.rest_v2``, ``server.rest_v1``, ``server.grpc_v2``) only translate: they
decode a request into feeds, hand it to ``DataPlane.infer`` and encode what comes back. Nothing
here imports aiohttp, grpc or the wire codecs (import-linter enforces it).
"""
