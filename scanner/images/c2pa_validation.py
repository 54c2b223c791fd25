"""Validating a C2PA manifest store with the official bindings, when the optional extra is installed.

``pip install 'gan-face-scanner[c2pa]'`` brings c2pa-python (``c2pa.Reader``, the C2PA
Rust library behind it). For a file whose metadata holds a manifest store
(``scanner.images.declared`` found ``c2pa``), ``validate(data, mime)`` reads the store
from the bytes already in memory (an in-memory stream; the file is never opened
again), its format the one scanner sniffed from the content, and says what the
library's validation says: ``c2pa:trusted``, ``c2pa:valid`` or ``c2pa:invalid``,
with the IPTC digital source types that the active manifest's actions assert.

Nothing is followed out of a file: remote manifests and OCSP responses are never
fetched, and the library's own allow-list of network hosts is empty (every request
refused). The trust list is the PEM file that the environment variable
SCANNER_C2PA_TRUST_ANCHORS names (it replaces the library's anchors); without it no
certificate is trusted, so a manifest is at best ``c2pa:valid``.

An error of the bindings on a malformed store is ``c2pa:invalid``; anything else that
keeps the store from being validated (the extra missing, the trust anchors
unreadable, an unexpected failure) is None: the caller keeps the plain ``c2pa``.
Nothing here raises.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.io import safeio

TRUST_ANCHORS_VARIABLE = "SCANNER_C2PA_TRUST_ANCHORS"  # a PEM file of trust anchors: its certificates are trusted
MAX_TRUST_ANCHORS_BYTES = 4 << 20  # of that file
MAX_MANIFEST_BYTES = 8 << 20  # a manifest store larger than this (its boxes or chunks, in all) is not validated
MAX_DECOMPRESSED_MANIFEST_MB = 16  # the library's bound on a Brotli-compressed manifest's inflated size

TRUSTED, VALID, INVALID = "c2pa:trusted", "c2pa:valid", "c2pa:invalid"
TOKENS = (TRUSTED, VALID, INVALID)  # best first
_STATES = {"trusted": TRUSTED, "valid": VALID, "invalid": INVALID}  # the library's validation_state, lower case
_ACTIONS = ("c2pa.actions", "c2pa.actions.v2")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validation:
    """What the bindings said of a manifest store: the token, and the IPTC digital source types (the last part
    of each term's URI, as written) that the active manifest's actions assert."""

    token: str
    source_types: tuple[str, ...] = ()


def settings(trust_anchors: str | None = None) -> dict[str, Any]:
    """The library's settings for a scan: validate on reading, never reach the network, trust only
    `trust_anchors` (PEM text; none when None)."""
    chosen: dict[str, Any] = {
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "verify_timestamp_trust": True,
            "remote_manifest_fetch": False,  # a manifest stored elsewhere (a URL in XMP) is never fetched
            "ocsp_fetch": False,  # nor a certificate's revocation status
        },
        "core": {
            "allowed_network_hosts": [],  # and any other request is refused by the library itself
            "max_decompressed_manifest_size_in_mb": MAX_DECOMPRESSED_MANIFEST_MB,
        },
    }
    if trust_anchors is not None:
        chosen["trust"] = {"trust_anchors": trust_anchors}
    return chosen


def available() -> bool:
    """Whether the optional extra (c2pa-python) can be imported."""
    return _bindings() is not None


def validate(data: bytes | bytearray | memoryview, mime: str) -> Validation | None:
    """Validate the manifest store of a file's bytes (`mime`: the format sniffed from them). None when nothing
    could be validated (the extra missing, no usable settings, an unexpected failure); never raises."""
    try:
        bindings = _bindings()
        context = _context()
        if bindings is None or context is None:
            return None
        try:
            with bindings.Reader(mime, io.BytesIO(data), context=context) as reader:
                report = json.loads(str(reader.json()))
        except bindings.C2paError:
            return Validation(INVALID)  # the store is malformed, or no manifest can be read from it
        return _validation(report)
    except Exception:  # the bindings' own trouble (a native library that did not load, memory): not validated
        return None


def _validation(report: object) -> Validation | None:
    if not isinstance(report, Mapping):
        return None
    state = report.get("validation_state")
    token = _STATES.get(state.lower()) if isinstance(state, str) else None
    if token is None:
        return None
    return Validation(token, _source_types(report))


def _source_types(report: Mapping[str, Any]) -> tuple[str, ...]:
    """The digitalSourceType of each action of the active manifest's c2pa.actions assertions."""
    manifests, active = report.get("manifests"), report.get("active_manifest")
    if not isinstance(manifests, Mapping) or not isinstance(active, str):
        return ()
    manifest = manifests.get(active)
    assertions = manifest.get("assertions") if isinstance(manifest, Mapping) else None
    found: list[str] = []
    for assertion in assertions if isinstance(assertions, list) else ():
        if not isinstance(assertion, Mapping) or str(assertion.get("label", "")).split("__")[0] not in _ACTIONS:
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, Mapping) else None
        for action in actions if isinstance(actions, list) else ():
            term = action.get("digitalSourceType") if isinstance(action, Mapping) else None
            if isinstance(term, str) and term:
                found.append(term.rstrip("/").rsplit("/", 1)[-1])
    return tuple(found)


# --- the bindings, loaded on first use, and one context per process -------------------------

_lock = threading.Lock()
_loaded: list[Any] = []  # [module or None] once tried
_contexts: dict[int, Any] = {}  # process id -> the context built there (None: settings unusable)


def _bindings() -> Any:
    """The c2pa module, or None when the extra is not installed (or its native library does not load)."""
    with _lock:
        if not _loaded:
            try:
                import c2pa

                _loaded.append(c2pa)
            except Exception:  # ImportError, or an OSError from loading the native library
                _loaded.append(None)
        return _loaded[0]


def _context() -> Any:
    """This process's reading context (a forked or spawned worker builds its own), or None when the settings
    cannot be used (the trust anchors unreadable): said once in the log, nothing is then validated."""
    pid = os.getpid()
    with _lock:
        if pid not in _contexts:
            _contexts[pid] = _build_context()
        return _contexts[pid]


def _build_context() -> Any:
    bindings = _loaded[0] if _loaded else None
    if bindings is None:
        return None
    try:
        anchors = _trust_anchors()
    except (OSError, ValueError) as exc:
        _log.warning("C2PA manifests are not validated: %s %s", TRUST_ANCHORS_VARIABLE, exc)
        return None
    try:
        return bindings.Context.from_dict(settings(anchors))
    except Exception as exc:
        _log.warning("C2PA manifests are not validated: the c2pa library refused its settings (%s)", exc)
        return None


def _trust_anchors() -> str | None:
    """The PEM text of the file SCANNER_C2PA_TRUST_ANCHORS names, None when it is unset or empty."""
    path = os.environ.get(TRUST_ANCHORS_VARIABLE)
    if not path:
        return None
    try:  # a regular file only (never a FIFO or a device), bounded
        text = bytes(safeio.read_bounded(path, MAX_TRUST_ANCHORS_BYTES))
    except safeio.TooManyBytes:
        raise ValueError(f"names a file over {MAX_TRUST_ANCHORS_BYTES >> 20} MiB: {path}") from None
    except safeio.NotRegularFile as exc:
        raise ValueError(f"names {safeio.not_regular(exc.kind)}: {path}") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"names a file with no PEM certificate: {path}")
    return text.decode("ascii", "replace")
