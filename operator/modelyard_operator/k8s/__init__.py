"""The only package that talks to the API server for the operator's own writes."""
