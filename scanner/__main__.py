"""`python -m scanner` and the `scanner` console script.

The command-line module is imported here, inside the Ctrl-C handling, so that an
interrupt during start-up ends quietly too.
"""

import sys


def main() -> None:
    try:
        from scanner.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
