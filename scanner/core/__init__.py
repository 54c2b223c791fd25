"""scanner.core."""
