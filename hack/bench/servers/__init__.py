"""Peer servers for the benchmark; each runs from its own virtualenv (see README.md here)."""
