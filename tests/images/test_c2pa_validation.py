"""C2PA manifests validated with the optional extra (c2pa-python): files signed here with a certificate chain made
here, scanned by the command line and read back from the store; and no network access, whatever a file names.
Skipped where the extra is not installed (presence detection is tested in test_metadata.py)."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

c2pa = pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from declared_files import app11, box, chunk, jpeg, jumd, png, with_chunks, with_segments  # noqa: E402
from hostile import scanner, text  # noqa: E402
from signed_files import chain, signed, with_changed_pixels  # noqa: E402

from scanner.images import c2pa_validation  # noqa: E402
from scanner.images.declared import declared  # noqa: E402
from scanner.store.hdf5 import read_features  # noqa: E402

SYNTHETIC = "iptc:trainedAlgorithmicMedia"  # what every file signed here declares in its c2pa.created action


@pytest.fixture(scope="module")
def certificates():
    return chain()


def scanned(root, out) -> dict[str, tuple[str, str]]:
    """`scanner scan` (two workers, in a subprocess of bounded time and memory): file name -> (status,
    declared) read back from the store."""
    result = scanner("scan", root, "--out", out, "-j", "2", "--planner", "estimate", "--quiet", timeout=180)
    assert "Traceback" not in text(result), text(result)
    table = read_features(out)
    names = [str(p).rsplit("/", 1)[1] for p in table.path]
    return dict(zip(names, zip(table.status.tolist(), table.declared.tolist(), strict=True), strict=True))


def test_a_scan_validates_signed_changed_and_broken_manifests(certificates, tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    jpeg_signed, png_signed = signed("jpeg", certificates), signed("png", certificates, seed=1)
    garbage = box(b"jumb", jumd("c2pa") + box(b"jumb", b"\x00\x00\x00\x09jumd" + bytes(range(256)) * 4))
    files = {
        "signed.jpg": jpeg_signed,
        "signed.png": png_signed,
        "changed.jpg": with_changed_pixels(jpeg_signed),
        "changed.png": with_changed_pixels(png_signed),
        "garbage.jpg": with_segments(jpeg(3), app11(garbage)),
        "garbage.png": with_chunks(png(4), chunk(b"caBX", garbage)),
        "signed.png.jpg": png_signed,  # the name says JPEG, the content PNG: the content decides
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    rows = scanned(root, tmp_path / "s.h5")
    assert rows == {
        "signed.jpg": ("ok", f"c2pa:valid;{SYNTHETIC}"),  # no trust list configured: valid at best
        "signed.png": ("ok", f"c2pa:valid;{SYNTHETIC}"),
        "changed.jpg": ("ok", f"c2pa:invalid;{SYNTHETIC}"),  # the hash binding the claim to the pixels fails
        "changed.png": ("ok", f"c2pa:invalid;{SYNTHETIC}"),
        "garbage.jpg": ("ok", "c2pa:invalid"),  # a store the library cannot parse
        "garbage.png": ("ok", "c2pa:invalid"),
        "signed.png.jpg": ("ok", f"c2pa:valid;{SYNTHETIC}"),
    }


def test_the_trust_list_makes_a_manifest_trusted(certificates, tmp_path):
    """SCANNER_C2PA_TRUST_ANCHORS names a PEM file: a manifest signed under one of its roots is trusted, one
    signed under another root only valid; a file that is not a trust list validates nothing (a warning)."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(certificates.root)
    ours, theirs = tmp_path / "ours.jpg", tmp_path / "theirs.jpg"
    ours.write_bytes(signed("jpeg", certificates))
    theirs.write_bytes(signed("jpeg", chain()))

    def features(variable: str) -> list[str]:
        env = {c2pa_validation.TRUST_ANCHORS_VARIABLE: variable}
        result = scanner("features", "--json", "--planner", "estimate", ours, theirs, env=env, timeout=120)
        assert result.returncode == 0 and "Traceback" not in text(result), text(result)
        return [json.loads(line)["declared"] for line in result.stdout.splitlines()]

    assert features(str(anchors)) == [f"c2pa:trusted;{SYNTHETIC}", f"c2pa:valid;{SYNTHETIC}"]
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("no certificate here")
    assert features(str(not_pem)) == ["c2pa", "c2pa"]  # nothing validated, rather than trust silently dropped
    assert features(str(tmp_path / "missing.pem")) == ["c2pa", "c2pa"]
    fifo = tmp_path / "anchors.fifo"
    os.mkfifo(fifo)  # never opened: a reader of a FIFO with no writer would wait forever
    assert features(str(fifo)) == ["c2pa", "c2pa"]


# --- nothing is followed out of a file ----------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[str, list[int]]]:
    """A local HTTP server that answers 404 to anything: its base URL, and one entry per connection it got.
    The library's requests come from native code (not Python's socket module), so they are counted here."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            connections.append(1)
            with client:
                client.settimeout(5)
                try:
                    client.recv(65536)
                    client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connections
    server.close()
    thread.join(timeout=5)


def read_with(settings: dict, data: bytes) -> str:
    """The library's reading with other settings (the controls): its validation state, or its error's name."""
    try:
        with c2pa.Reader("image/jpeg", io.BytesIO(data), context=c2pa.Context.from_dict(settings)) as reader:
            return str(json.loads(reader.json()).get("validation_state"))
    except c2pa.C2paError as exc:
        return type(exc).__name__


def test_a_remote_manifest_is_never_fetched(certificates, listener):
    base, connections = listener
    remote_only = signed("jpeg", certificates, remote_url=f"{base}/manifest.c2pa", embed=False)
    both = signed("jpeg", certificates, remote_url=f"{base}/manifest.c2pa")
    # Only a URL in XMP: no store in the file, nothing declared, nothing validated, nothing fetched.
    assert declared(remote_only, validate=True) == ""
    assert c2pa_validation.validate(remote_only, "image/jpeg") == c2pa_validation.Validation("c2pa:invalid")
    # A store in the file and a URL beside it: the store is validated, the URL never followed.
    assert declared(both, validate=True) == f"c2pa:valid;{SYNTHETIC}"
    assert connections == []
    # The control: with the library's defaults, the same file makes it connect (so the count above means it).
    read_with({}, remote_only)
    assert len(connections) >= 1


def test_no_ocsp_request_is_made(listener):
    base, connections = listener
    certificates = chain(ocsp_url=f"{base}/ocsp")
    data = signed("jpeg", certificates)
    assert declared(data, validate=True) == f"c2pa:valid;{SYNTHETIC}"
    assert connections == []
    read_with({"verify": {"ocsp_fetch": True}}, data)  # the control: asked to, the library asks the responder
    assert len(connections) >= 1


def test_settings_refuse_every_network_access():
    chosen = c2pa_validation.settings()
    assert chosen["verify"]["remote_manifest_fetch"] is False and chosen["verify"]["ocsp_fetch"] is False
    assert chosen["core"]["allowed_network_hosts"] == [] and "trust" not in chosen
    assert c2pa_validation.settings("PEM")["trust"] == {"trust_anchors": "PEM"}
