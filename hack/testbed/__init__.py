"""What the tests, the demo and the benchmarks share: ONNX models built in code, ModelDeployment
manifests, and runtime and operator processes run the way a user runs them. ``tests/`` imports
from here; nothing here imports ``tests/``."""
