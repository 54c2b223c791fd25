"""scanner.features."""
