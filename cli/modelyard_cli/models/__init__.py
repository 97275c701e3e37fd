"""The model pipeline: PyTorch -> checked ONNX (export), int8/fp16 (quantize), pruning, and
reading ONNX files (digest, inspect). torch and onnx come with the ``export`` extra and are
imported only by the commands that need them."""
