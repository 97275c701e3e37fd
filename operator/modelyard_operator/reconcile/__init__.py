"""Pure reconcile logic: (ModelDeployment, observed objects, config, now) -> desired objects and
status. No I/O, no clock, no kopf, no Kubernetes client."""
