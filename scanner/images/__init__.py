"""scanner.images."""
