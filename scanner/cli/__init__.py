"""The `scanner` command line: a thin typer layer over the library.

One module per group of commands registers them on one application
(scanner.cli.base; scanner.cli.program registers them all), which also maps the library's errors to exit codes in one
place. Command modules import the heavy parts of the library (numba, FFTW,
OpenCV) inside the commands that need them, so `--help`, `--version`, `info`
and `export` start fast.

Exit codes (every command): 0 done, every file usable; 1 done, but some files
could not be used (each is reported with a reason); 2 usage error (a bad
option, argument or input file); 3 fatal error (for example an output that
cannot be written); 130 interrupted.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, {"program": ["app", "main"]})
