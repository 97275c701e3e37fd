"""Example models for `modelyard export`: plain torch modules, no downloads."""
