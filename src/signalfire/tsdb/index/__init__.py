"""tsdb/index."""
