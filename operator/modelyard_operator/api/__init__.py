"""The ModelDeployment API: pydantic models (the source of truth) and the CRD generator."""
