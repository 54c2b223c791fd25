"""Reading and writing files safely: regular files only, reads bounded, HDF5 checked, outputs atomic.

safeio opens inputs (never a FIFO or a device, never a read without a bound);
h5safe is the one checking opener of HDF5 files from elsewhere; outputs writes
every output through a temporary file; walk lists directories and lists, with
problems as rows; tables reads a Parquet table within a bound on what it expands to.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "safeio": ["NotRegularFile", "TooManyBytes", "open_regular", "read_bounded"],
        "h5safe": ["CheckedFile"],
        "outputs": ["output_file", "output_path"],
        "walk": ["Walk", "Found", "list_entries", "parse_extensions"],
        "tables": ["read_parquet_records"],
    },
)
