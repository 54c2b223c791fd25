"""scanner.bench."""
