"""modelyard's user CLI (``modelyard``, also ``kubectl-modelyard``): model files and rollouts.

``models/`` turns PyTorch models into checked ONNX files (export, quantize, prune) and describes
them (digest, inspect). It never imports the server: only ``modelyard_runtime.contract``.
"""

__version__ = "0.1.0"
