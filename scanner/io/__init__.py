"""scanner.io."""
