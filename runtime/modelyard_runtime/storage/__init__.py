"""Model sources: fetch a model file from file, http(s), s3 or gs and verify its digest."""
