"""scanner.store."""
