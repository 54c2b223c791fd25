"""scanner.report."""
