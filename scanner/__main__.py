"""`python -m scanner` runs the command-line interface."""

from scanner.cli import main

main()
