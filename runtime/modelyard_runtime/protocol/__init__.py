"""Wire formats: OIP v2 JSON and binary tensors, TF-Serving v1. Pure: no aiohttp, no onnxruntime."""
