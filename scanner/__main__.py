"""`python -m scanner` and the `scanner` console script.

The command-line module is imported here, inside the Ctrl-C handling, so that an
interrupt during start-up ends quietly too.
"""

import _thread
import sys
import threading
from typing import Any


def _ctrl_c_in_a_callback(unraisable: Any) -> None:
    """A Ctrl-C that lands in a callback Python cannot raise from (an import lock's weakref callback,
    a finaliser) is printed as 'Exception ignored ... Traceback ... KeyboardInterrupt' and then lost.
    Here it is delivered to the main thread again instead, where the command ends as interrupted."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # a moment later, from another thread: raised now, it would land in this hook and be lost again
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.daemon = True
        timer.start()
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    sys.unraisablehook = _ctrl_c_in_a_callback
    try:
        from scanner.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
