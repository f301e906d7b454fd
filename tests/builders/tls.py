"""A test PKI for the DICOM TLS tests: a CA, server and client certificates, made with cryptography.

:func:`make_pki` writes, in a folder: ``ca.pem`` (the test CA), ``server.pem``/``server.key``
(``localhost``, ``127.0.0.1``), ``client.pem``/``client.key`` (CN ``MODALITY_1``),
``other.pem``/``other.key`` (CN ``MODALITY_2``), ``expired.pem``/``expired.key`` (from the
test CA, expired yesterday) and ``rogue.pem``/``rogue.key`` (CN ``MODALITY_1`` from another CA,
``rogue-ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "make_pki"]

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    """The files of :func:`make_pki`."""

    root: Path

    def __getitem__(self, name: str) -> Path:
        """Return ``root/name`` (``"ca.pem"``, ``"client.key"``...)."""
        return self.root / name


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: _Key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _ca(cn: str, path: Path) -> tuple[_Key, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _leaf(
    ca: tuple[_Key, x509.Certificate],
    cn: str,
    stem: Path,
    *,
    server: bool,
    expired: bool = False,
) -> None:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    )
    names: list[x509.GeneralName] = [x509.DNSName(cn)]
    if server:
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    stem.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, stem.with_suffix(".key"))


def make_pki(root: Path) -> Pki:
    """Write the test CA, another CA and their certificates into ``root`` (see the module).

    Parameters
    ----------
    root : pathlib.Path
        The folder (created).

    Returns
    -------
    Pki
        Paths by file name.
    """
    root.mkdir(parents=True, exist_ok=True)
    ca = _ca("ICS Test CA", root / "ca.pem")
    rogue_ca = _ca("Rogue CA", root / "rogue-ca.pem")
    _leaf(ca, "localhost", root / "server", server=True)
    _leaf(ca, "MODALITY_1", root / "client", server=False)
    _leaf(ca, "MODALITY_2", root / "other", server=False)
    _leaf(ca, "MODALITY_1", root / "expired", server=False, expired=True)
    _leaf(rogue_ca, "MODALITY_1", root / "rogue", server=False)
    return Pki(root)
