"""scanner.run."""
