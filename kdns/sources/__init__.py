"""Sources feed an IndexBuilder: a snapshot file, or the Kubernetes API (list + watch)."""
