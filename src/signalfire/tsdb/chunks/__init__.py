"""tsdb/chunks."""
