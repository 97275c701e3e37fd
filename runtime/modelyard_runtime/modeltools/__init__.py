"""The `modelyard` user CLI for model files: export, quantize, prune, digest, inspect."""
