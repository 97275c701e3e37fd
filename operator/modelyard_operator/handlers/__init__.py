"""kopf glue: decorators on an explicit registry; observe -> plan -> apply -> status."""
