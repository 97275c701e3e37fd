"""modelyard operator: reconciles ModelDeployment resources (serving.modelyard.io/v1alpha1)."""

__version__ = "0.1.0"
