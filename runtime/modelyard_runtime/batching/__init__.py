"""Dynamic batching: a pure flush policy (``policy``) and the asyncio scheduler (``scheduler``).

No aiohttp and no onnxruntime here: the scheduler runs any ``ModelSession`` in an executor.
"""
