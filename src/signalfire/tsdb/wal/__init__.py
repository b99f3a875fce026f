"""tsdb/wal."""
