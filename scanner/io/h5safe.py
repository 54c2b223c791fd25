"""Opening HDF5 files from elsewhere (feature stores, models): only what is inside the file, checked first.

HDF5 can make a small file reach far beyond itself: an external link opens
another file (a FIFO blocks for ever), external raw storage reads a dataset's
bytes from any file on the machine, a virtual dataset assembles itself from other
files, a filter the library does not know loads a plugin, and a dataset may
declare 2^40 rows it never stored (reading them loops for minutes or runs out of
memory). Stores and models are therefore opened through ``CheckedFile``:

* the path must be a regular file (scanner.io.safeio: a FIFO or device is refused
  without being opened, and HDF5 opens the very file that was checked);
* an object is reached only through a hard link (soft, external and user-defined
  links are refused, which also rules out link loops);
* a dataset must be stored in the file (contiguous, chunked or compact; not
  virtual, no external storage), use only the built-in filters (deflate,
  shuffle, Fletcher-32, LZF, n-bit, scale-offset), have the kind and rank asked
  for, and have its data: every chunk the shape needs is allocated, the storage
  fits inside the file, and the rows it declares fit in that storage (at most
  ``MAX_RATIO`` times it when compressed);
* an attribute is read only if it is a number or text (or a short array of
  them); references and compound, opaque or nested types are refused;
* text columns are read slice by slice, and their total may not exceed what the
  file could hold (shared heap objects cannot multiply it).

Every HDF5 error while opening or reading becomes the caller's error class (a
one-line message, exit code 2) through ``errors_as``.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from scanner.core.errors import InputError
from scanner.io import safeio

ALLOWED_FILTERS = {
    h5py.h5z.FILTER_DEFLATE: "deflate",
    h5py.h5z.FILTER_SHUFFLE: "shuffle",
    h5py.h5z.FILTER_FLETCHER32: "fletcher32",
    h5py.h5z.FILTER_LZF: "lzf",
    h5py.h5z.FILTER_NBIT: "nbit",
    h5py.h5z.FILTER_SCALEOFFSET: "scaleoffset",
}
MAX_RATIO = 1100  # deflate cannot expand data more than 1032 times; nothing we write comes near
RATIO_SLACK = 1 << 20  # bytes a small compressed dataset may expand to whatever its ratio
MAX_ATTRIBUTE_ELEMENTS = 1 << 16
# Attributes are read whole, and a text one copies the string each of its values names (which
# may all be one): at most MAX_ATTRIBUTES + MAX_TEXT_ATTRIBUTE_ELEMENTS copies of strings no larger
# than the file. A store or model has about ten attributes; its longest text list is a feature set's
# names (131).
MAX_ATTRIBUTES = 64
MAX_TEXT_ATTRIBUTE_ELEMENTS = 256
MAX_CHUNK_BYTES = 1 << 27  # a store's largest chunks, 16,384 rows of 131 features, are 17 MB
MAX_TEXT_CHUNK_ROWS = 1 << 16  # stores write text in chunks of 16,384 rows
TEXT_SLICE = 4096  # rows of a text column read at a time
_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "a soft", h5py.h5l.TYPE_EXTERNAL: "an external"}
_LAYOUTS = {h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked", h5py.h5d.COMPACT: "compact"}

# What h5py raises for a damaged file (HDF5's errors come as OSError, KeyError,
# ValueError, RuntimeError, TypeError or IndexError, depending on where they arise).
HDF5_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    KeyError,
    ValueError,
    RuntimeError,
    TypeError,
    IndexError,
    OverflowError,
    MemoryError,
)


@contextmanager
def errors_as(error: type[InputError], name: str, what: str) -> Iterator[None]:
    """Turn every HDF5 (h5py) error inside the block into `error`: 'NAME: damaged WHAT: why'."""
    try:
        yield
    except InputError:
        raise
    except MemoryError:
        raise error(f"{name}: damaged {what}: it asks for more memory than there is") from None
    except HDF5_ERRORS as exc:
        raise error(f"{name}: damaged {what}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class CheckedFile:
    """An HDF5 file opened read-only after checking that it is a regular file; its objects are reached
    through the checking accessors. Use as a context manager."""

    def __init__(
        self, path: str | os.PathLike[str], what: str, error: type[InputError], *, digest: bool = False
    ) -> None:
        self.name = os.fspath(path)
        self.sha256: str | None = None  # with digest=True: of the bytes of the very file HDF5 opens
        self.what = what
        self.error = error
        try:
            fd = safeio.open_regular(self.name)
        except FileNotFoundError:
            raise error(f"{self.name}: no such file") from None
        except safeio.NotRegularFile as exc:
            raise error(f"{self.name}: not a {what}: {safeio.not_regular(exc.kind)}") from None
        except OSError as exc:
            raise error(f"{self.name}: cannot read it: {exc.strerror or exc}") from None
        try:
            self.size = os.fstat(fd).st_size
            if not self.size:
                raise self.refuse("an empty file")
            if digest:
                try:
                    self.sha256 = safeio.sha256_of(fd)
                except OSError as exc:
                    raise error(f"{self.name}: cannot read it: {exc.strerror or exc}") from None
            try:
                self.file = h5py.File(safeio.reopen_path(fd, self.name), "r")
            except HDF5_ERRORS as exc:
                raise self.refuse(f"not a readable HDF5 file (damaged, or not a {what}): {_first_line(exc)}") from None
        finally:
            os.close(fd)

    def __enter__(self) -> CheckedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with suppress(*HDF5_ERRORS):  # closing a damaged file
            self.file.close()

    def refuse(self, why: str) -> InputError:
        return self.error(f"{self.name}: not a usable {self.what}: {why}")

    # --- objects ------------------------------------------------------------------------------

    def member(self, group: h5py.Group, name: str) -> h5py.Group | h5py.Dataset | None:
        """The object `name` in `group` if there is one, reached through a hard link; None if absent."""
        key = name.encode()
        with errors_as(self.error, self.name, self.what):
            if not group.id.links.exists(key):
                return None
            kind = group.id.links.get_info(key).type
            if kind != h5py.h5l.TYPE_HARD:
                where = f"{group.name.rstrip('/')}/{name}"
                link = _LINK_KINDS.get(kind, "a user-defined")
                raise self.refuse(f"{where} is {link} link: a {self.what} may hold only its own objects")
            obj = group[name]
        if not isinstance(obj, h5py.Group | h5py.Dataset):
            raise self.refuse(f"{obj.name} is neither a group nor a dataset")
        return obj

    def group(self, group: h5py.Group, name: str) -> h5py.Group | None:
        obj = self.member(group, name)
        if obj is not None and not isinstance(obj, h5py.Group):
            raise self.refuse(f"{obj.name} is not a group")
        return obj

    def dataset(
        self, group: h5py.Group, name: str, kinds: str, ndim: int, *, required: bool = True
    ) -> h5py.Dataset | None:
        """The dataset `name` in `group`, checked: stored in the file, its data all there, its element
        kind one of `kinds` (numpy kinds, 'T' for text) and its rank `ndim`."""
        obj = self.member(group, name)
        if obj is None:
            if required:
                raise self.refuse(f"no dataset {group.name.rstrip('/')}/{name}")
            return None
        if not isinstance(obj, h5py.Dataset):
            raise self.refuse(f"{obj.name} is not a dataset")
        with errors_as(self.error, self.name, self.what):
            self._check_dtype(obj.name, obj.dtype, kinds)
            if obj.ndim != ndim:
                raise self.refuse(f"{obj.name} has {obj.ndim} dimensions, not {ndim}")
            self._check_storage(obj)
        return obj

    def _check_dtype(self, where: str, dtype: np.dtype[Any], kinds: str) -> None:
        if h5py.check_string_dtype(dtype) is not None:
            kind = "T"
        elif h5py.check_vlen_dtype(dtype) is not None or h5py.check_ref_dtype(dtype) is not None:
            kind = "R"
        elif dtype.fields is not None or dtype.subdtype is not None:
            kind = "C"
        else:
            kind = dtype.kind
        if kind not in kinds:
            wanted = " or ".join(sorted({_kind_name(k) for k in kinds}))
            if "T" in kinds and "f" in kinds:
                wanted = "numbers or text"
            raise self.refuse(f"{where} holds {_kind_name(kind)}, not {wanted}")

    def _check_storage(self, dataset: h5py.Dataset) -> None:
        """Refuse data from outside the file, unknown filters, and rows declared but not stored."""
        dcpl = dataset.id.get_create_plist()
        layout = dcpl.get_layout()
        where = dataset.name
        if layout == h5py.h5d.VIRTUAL:
            raise self.refuse(f"{where} is a virtual dataset (its data would come from other files)")
        if layout not in _LAYOUTS:
            raise self.refuse(f"{where} has an unknown storage layout")
        if dcpl.get_external_count():
            raise self.refuse(f"{where} keeps its data in external files")
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        unknown = [f for f in filters if f not in ALLOWED_FILTERS]
        if unknown:
            raise self.refuse(f"{where} uses filter {unknown[0]}, not one of the built-in ones")
        logical = math.prod(dataset.shape) * dataset.dtype.itemsize
        if logical == 0:
            return
        storage = dataset.id.get_storage_size()
        if storage > self.size:
            raise self.refuse(f"{where} claims {storage:,} bytes of storage in a file of {self.size:,}")
        if layout == h5py.h5d.CHUNKED:
            chunks = dataset.chunks or dataset.shape
            chunk_bytes = math.prod(chunks) * dataset.id.get_type().get_size()
            if chunk_bytes > MAX_CHUNK_BYTES:  # HDF5 holds a whole chunk to read any row of it
                raise self.refuse(f"{where} has chunks of {chunk_bytes:,} bytes (at most {MAX_CHUNK_BYTES:,})")
            if h5py.check_string_dtype(dataset.dtype) is not None and chunks[0] > MAX_TEXT_CHUNK_ROWS:
                # each slice read inflates the chunk again: a 1M-row chunk took minutes to read
                raise self.refuse(f"{where} has chunks of {chunks[0]:,} rows of text (at most {MAX_TEXT_CHUNK_ROWS:,})")
            needed = math.prod(math.ceil(n / c) for n, c in zip(dataset.shape, chunks, strict=True))
            if dataset.id.get_num_chunks() < needed:
                raise self.refuse(f"{where} declares {dataset.shape[0]:,} rows but holds the data of fewer")
            if filters and logical > MAX_RATIO * storage + RATIO_SLACK:
                raise self.refuse(f"{where} would expand {logical / storage:,.0f} times: more than compression gives")
        if (layout == h5py.h5d.CONTIGUOUS or (layout == h5py.h5d.CHUNKED and not filters)) and storage < logical:
            raise self.refuse(f"{where} declares {dataset.shape[0]:,} rows but holds the data of fewer")
        if layout == h5py.h5d.CONTIGUOUS:
            offset = dataset.id.get_offset()
            if offset is not None and offset + storage > self.size:
                raise self.refuse(f"{where} lies beyond the end of the file")

    # --- attributes ------------------------------------------------------------------------------

    def attributes(self, obj: h5py.HLObject, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The attributes of `obj` (or only those named) that are numbers or text, as Python values
        (bytes decoded as UTF-8); an attribute of another type is refused."""
        values: dict[str, Any] = {}
        with errors_as(self.error, self.name, self.what):
            count = len(obj.attrs)  # from the object header, without listing them
            if count > MAX_ATTRIBUTES:  # each lookup by name walks them; and each may name one large string
                where = "the file" if obj.name == "/" else obj.name
                raise self.refuse(f"{where} has {count:,} attributes (at most {MAX_ATTRIBUTES:,} are read)")
            for name in list(obj.attrs) if names is None else [n for n in names if n in obj.attrs]:
                attribute = obj.attrs.get_id(name)
                where = f"attribute {name}" if obj.name == "/" else f"{obj.name}: attribute {name}"
                self._check_dtype(where, attribute.dtype, "TbiufS")
                text = h5py.check_string_dtype(attribute.dtype) is not None
                if math.prod(attribute.shape or ()) > (MAX_TEXT_ATTRIBUTE_ELEMENTS if text else MAX_ATTRIBUTE_ELEMENTS):
                    # text values are read whole, each a copy of the string it names (many may name one)
                    raise self.refuse(f"{where} holds {math.prod(attribute.shape):,} values")
                values[name] = _python_value(obj.attrs[name])
        return values

    # --- reading ---------------------------------------------------------------------------------

    def text(self, dataset: h5py.Dataset, where: slice, *, as_bytes: bool = False) -> npt.NDArray[np.object_]:
        """Rows of a text column as an object array of str (bytes that are not UTF-8 kept by
        surrogateescape), or of bytes; read in slices whose total may not exceed the file's size."""
        start, stop, _ = where.indices(dataset.shape[0])
        parts, total, most = [], 0, 2 * self.size + RATIO_SLACK
        source = dataset if as_bytes else dataset.asstr(errors="surrogateescape")
        with errors_as(self.error, self.name, self.what):
            if self._declared_text(dataset, start, stop, most) > most:
                raise self.refuse(f"{dataset.name} holds more text than the file could")
            for first in range(start, stop, TEXT_SLICE):
                values = source[first : min(stop, first + TEXT_SLICE)].tolist()
                total += sum(map(len, values))
                if total > most:
                    raise self.refuse(f"{dataset.name} holds more text than the file could")
                row = _first_nul(values, b"\0" if as_bytes else "\0")
                if row is not None:  # no text scanner writes holds one (a path cannot); written back, it fails
                    raise self.refuse(f"{dataset.name}, row {first + row:,}, holds a NUL byte")
                parts.append(np.asarray(values, dtype=object))
        return np.concatenate(parts) if parts else np.empty(0, dtype=object)

    def _declared_text(self, dataset: h5py.Dataset, start: int, stop: int, most: int) -> int:
        """The bytes that rows start..stop of a variable-length text column hold, from the lengths in
        their descriptors in the file, before HDF5 reads one: a descriptor is (length, heap address,
        index), and many rows may name one large heap object, which reading them all at once would
        copy for each (4,096 rows of one 2 MB string: 8 GB). Counting stops once over `most`; 0 for
        fixed-length text (its size is its storage's, checked when the dataset was)."""
        string = h5py.check_string_dtype(dataset.dtype)
        if start >= stop or string is None or string.length is not None:
            return 0
        sizeof_addr = self.file.id.get_create_plist().get_sizes()[0]
        width = 4 + sizeof_addr + 4
        dcpl = dataset.id.get_create_plist()
        layout = dcpl.get_layout()
        total = 0
        if layout == h5py.h5d.CHUNKED:
            rows = (dataset.chunks or dataset.shape)[0]
            pipeline = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
            filters, settings = [f[0] for f in pipeline], [tuple(f[2]) for f in pipeline]
            for first in range(start - start % rows, stop, rows):
                mask, raw = dataset.id.read_direct_chunk((first,))
                unfiltered = self._unfiltered(dataset, raw, filters, settings, mask, rows, width)
                lengths = _descriptor_lengths(unfiltered, width)
                total += int(lengths[max(start - first, 0) : stop - first].sum())
                if total > most:
                    break
        elif layout == h5py.h5d.CONTIGUOUS:
            offset = dataset.id.get_offset()
            handle = self.file.id.get_vfd_handle()
            for first in range(start, stop, 1 << 16):
                count = min(stop, first + (1 << 16)) - first
                raw = os.pread(handle, count * width, offset + first * width)
                if len(raw) != count * width:
                    raise self.refuse(f"{dataset.name} lies beyond the end of the file")
                total += int(_descriptor_lengths(raw, width).sum())
                if total > most:
                    break
        else:  # compact: its descriptors, at most 64 KiB, live in the object header; read row by row
            for row in range(start, stop):
                total += len(dataset[row])
                if total > most:
                    break
        return total

    def _unfiltered(
        self,
        dataset: h5py.Dataset,
        raw: bytes,
        filters: list[int],
        settings: list[tuple[int, ...]],
        mask: int,
        rows: int,
        width: int,
    ) -> bytes:
        """A chunk's bytes with its filters undone (the pipeline backwards, skipping those its mask says
        were not applied); a text column may use only deflate, shuffle and Fletcher-32."""
        size = rows * width
        for index in reversed(range(len(filters))):
            if mask & (1 << index):
                continue
            if filters[index] == h5py.h5z.FILTER_FLETCHER32:
                raw = raw[:-4]
            elif filters[index] == h5py.h5z.FILTER_DEFLATE:
                inflate = zlib.decompressobj()
                try:
                    raw = inflate.decompress(raw, size + 1)
                except zlib.error as exc:
                    raise self.refuse(f"{dataset.name} has a damaged chunk: {exc}") from None
            elif filters[index] == h5py.h5z.FILTER_SHUFFLE:
                # HDF5 skips shuffle on text (its mask says so); one applied was written by hand
                element = settings[index][0] if settings[index] else width
                if element > 1 and (element != width or len(raw) != size):
                    raise self.refuse(f"{dataset.name} shuffles its text by {element} bytes, not {width}")
                if element > 1:
                    raw = np.frombuffer(raw, np.uint8).reshape(width, rows).T.tobytes()
            else:
                name = ALLOWED_FILTERS.get(filters[index], str(filters[index]))
                raise self.refuse(f"{dataset.name} holds text through the {name} filter")
        if len(raw) != size:
            raise self.refuse(f"{dataset.name} has a chunk of {len(raw):,} bytes, not {size:,}")
        return raw


_KIND_NAMES = {
    "f": "floats",
    "i": "integers",
    "u": "integers",
    "b": "booleans",
    "T": "text",
    "S": "bytes",
    "R": "references or variable-length data",
    "C": "compound or array values",
}


def _first_nul(values: list[Any], nul: Any) -> int | None:
    """The index of the first value holding `nul` (one search of them joined, then one by one)."""
    if nul not in nul[:0].join(values):
        return None
    return next(i for i, value in enumerate(values) if nul in value)


def _descriptor_lengths(raw: bytes, width: int) -> npt.NDArray[np.uint32]:
    """The lengths (the first four bytes, little-endian) of variable-length descriptors `width` bytes apart."""
    return np.frombuffer(raw, np.uint8).reshape(-1, width)[:, :4].copy().view("<u4").ravel()


def _kind_name(kind: str) -> str:
    return _KIND_NAMES.get(kind, f"values of type {kind!r}")


def _python_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_python_value(v) for v in value.tolist()] if value.ndim else _python_value(value[()])
    return value
