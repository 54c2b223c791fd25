"""Files with real, signed C2PA manifests, made at test time (the optional extra `c2pa` and `cryptography`).

A throwaway certificate chain (a root CA and a signing certificate it issued, P-256, valid from yesterday for
30 days) signs small JPEG and PNG images with c2pa.Builder; nothing is downloaded, no key is kept.
"""

from __future__ import annotations

import datetime
import io
import struct
from dataclasses import dataclass

import c2pa
import cv2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from declared_files import image

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
MIME = {"jpeg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class Chain:
    """A signing certificate with its issuer (PEM), the signing key (PEM), and the root alone (a trust list)."""

    certificates: bytes
    key: bytes
    root: bytes


def _name(common: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scanner")]
    )


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def chain(ocsp_url: str | None = None) -> Chain:
    """A test root and a signing certificate it issued (EKU emailProtection, as C2PA accepts); `ocsp_url`: the
    signing certificate names that OCSP responder (its Authority Information Access)."""
    now = datetime.datetime.now(datetime.UTC)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def issued(subject: str, public: ec.EllipticCurvePublicKey, signer: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name("scanner test root"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=not signer, path_length=None), critical=True)
            .add_extension(_usage(signer=signer), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        )

    root = issued("scanner test root", root_key.public_key(), False).sign(root_key, hashes.SHA256())
    leaf = issued("scanner test signer", key.public_key(), True).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
    )
    if ocsp_url:
        where = x509.UniformResourceIdentifier(ocsp_url)
        leaf = leaf.add_extension(
            x509.AuthorityInformationAccess([x509.AccessDescription(AuthorityInformationAccessOID.OCSP, where)]),
            critical=False,
        )
    signing = leaf.sign(root_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    return Chain(
        signing.public_bytes(pem) + root.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root.public_bytes(pem),
    )


def encoded(kind: str, seed: int = 0) -> bytes:
    ok, data = cv2.imencode(".jpg" if kind == "jpeg" else ".png", image(seed, 32))
    assert ok
    return data.tobytes()


def signed(
    kind: str,
    chain: Chain,
    *,
    seed: int = 0,
    source_type: str = "trainedAlgorithmicMedia",
    remote_url: str | None = None,
    embed: bool = True,
) -> bytes:
    """A small image (kind 'jpeg' or 'png') signed with `chain`: one manifest whose c2pa.created action names
    IPTC's `source_type`; `remote_url` also written into the file (XMP), and with embed=False only there."""
    manifest = {
        "claim_generator_info": [{"name": "scanner tests", "version": "1"}],
        "title": f"test.{kind}",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": IPTC + source_type}]},
            }
        ],
    }
    settings = {"builder": {"thumbnail": {"enabled": False}}, "verify": {"verify_after_sign": False}}
    context = c2pa.Context.from_dict(settings)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.certificates, chain.key, None))
    builder = c2pa.Builder(manifest, context=context)
    if remote_url:
        builder.set_remote_url(remote_url)
    if not embed:
        builder.set_no_embed()
    out = io.BytesIO()
    builder.sign(signer, MIME[kind], io.BytesIO(encoded(kind, seed)), out)
    return out.getvalue()


def with_changed_pixels(data: bytes) -> bytes:
    """The signed file with other pixels and the same metadata: JPEG, the first value of its first quantization
    table changed (every block's DC term scales differently; the file decodes cleanly); PNG, its image data
    replaced by another image's (whole, valid chunks)."""
    if data[:2] == b"\xff\xd8":
        at = data.index(b"\xff\xdb") + 5  # marker, length, table id: the table's first value
        changed = data[at] + 1 if data[at] < 0xFE else data[at] - 1
        return data[:at] + bytes([changed]) + data[at + 1 :]
    other = encoded("png", seed=99)
    return _without_idat(data, _idat_chunks(other))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = 8, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        out.append((kind, data[pos : pos + 12 + length]))
        pos += 12 + length
    return out


def _idat_chunks(data: bytes) -> bytes:
    return b"".join(whole for kind, whole in _chunks(data) if kind == b"IDAT")


def _without_idat(data: bytes, idat: bytes) -> bytes:
    out, placed = [data[:8]], False
    for kind, whole in _chunks(data):
        if kind == b"IDAT":
            if not placed:
                out.append(idat)
                placed = True
            continue
        out.append(whole)
    return b"".join(out)
