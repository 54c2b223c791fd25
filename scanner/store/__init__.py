"""The feature store: an HDF5 file of one row per file, written crash-safely and resumed.

hdf5 reads and writes the store; records frames the rows of the journal
(journal) and of the part files of distributed tasks (parts); keys says which
files are done and which rows compare; lock holds one writer; merge is the one
merge of rows into a store; session is one writer's hold on a store.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "hdf5": ["read_features", "read_header", "iter_rows", "write_table"],
        "session": ["StoreSession", "CommitPolicy"],
        "merge": ["merge_stores"],
    },
)
