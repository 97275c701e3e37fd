"""The model pipeline: PyTorch -> checked ONNX (export), int8/fp16 (quantize), pruning,
distillation into a smaller student (distill), low-rank Linear layers (factorize), and reading
ONNX files (digest, inspect). torch, onnx and rich come with the ``export`` extra and are
imported only by the commands that need them."""
