"""What the runtime, the operator and the user CLI agree on, in one place.

``names``: startup stages and the status reasons they become, labels, ports, metric names (the
runtime's and the custom-metrics names the autoscaler reads). ``digest``: how a model file is
hashed. ``gpu``: whether an NVIDIA GPU is visible and what onnxruntime calls its providers.
``signing`` and ``sealing``: the signature beside a signed model and the format of an encrypted
one, written by the user CLI and checked by the fetch step and the runtime (they need
``cryptography``; nothing imports them unless it signs, verifies or decrypts).
This package imports nothing else of modelyard (an import-linter contract), so every other part
may depend on it.
"""
