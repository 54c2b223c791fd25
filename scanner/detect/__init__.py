"""scanner.detect."""
