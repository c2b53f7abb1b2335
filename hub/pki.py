"""The deployment's public-key infrastructure: one CA, certificates that carry an identity.

``smc keys`` builds it. Every process of a deployment (hub, party daemons, the dealer, clients)
holds a certificate issued by the deployment CA; its subject says who it is:

* common name (CN): the identity, e.g. ``st_mary`` or ``analyst``;
* organisational unit (OU): the role, one of :data:`ROLES`.

Identity always comes from a certificate verified against the CA, never from a name a message
claims. Keys are ECDSA P-256: they authenticate TLS connections and sign the few canonical
statements the protocol needs (a client's task manifest, a party's per-task key announcement).

Security contract: whoever holds ``ca.key`` can mint any identity; keep it offline once the
certificates are issued. A leaf key file is written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("hub", "party", "dealer", "client")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")


class CertificateError(Exception):
    """A certificate that is not acceptable: wrong CA, expired, wrong role or name."""


@dataclass(frozen=True)
class Identity:
    name: str
    role: str

    def __str__(self) -> str:
        return f"{self.role} {self.name!r}"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise CertificateError(
            f"identity {name!r} is not a valid name (letters, digits, '_', '.', '-'; "
            "starts with a letter; at most 63 characters)"
        )
    return name


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_ca(directory: str | Path, deployment: str = "smc deployment", days: int = 3650) -> Path:
    """Create ``ca.key`` and ``ca.crt`` in ``directory``; refuses to overwrite an existing CA."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "ca.key").exists():
        raise CertificateError(f"{out / 'ca.key'} already exists; refusing to replace a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, deployment),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{deployment} CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
    _write_private(out / "ca.key", _key_pem(key))
    (out / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out / "ca.crt"


def issue(
    directory: str | Path, role: str, name: str, sans: tuple[str, ...] = (), days: int = 825
) -> tuple[Path, Path]:
    """Issue ``<name>.crt``/``<name>.key`` for ``role`` with the CA in ``directory``.

    ``sans`` are DNS names or IP addresses the holder is reachable at (needed for the hub, whose
    clients check its address); ``localhost``, ``127.0.0.1`` and the name itself are always added.
    """
    if role not in ROLES:
        raise CertificateError(f"unknown role {role!r}: choose one of {list(ROLES)}")
    check_name(name)
    out = Path(directory)
    ca_key = serialization.load_pem_private_key((out / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    org = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(org[0].value))] if org else []
    subject = x509.Name(
        [
            *attrs,
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    alt: list[x509.GeneralName] = []
    for san in dict.fromkeys((name, "localhost", "127.0.0.1", *sans)):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            alt.append(x509.DNSName(san))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(out / f"{name}.key", _key_pem(key))
    (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out / f"{name}.crt", out / f"{name}.key"


# ---------------------------------------------------------------------------------- verifying


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None


def identity_of(cert: x509.Certificate) -> Identity:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(cn) != 1 or len(ou) != 1 or str(ou[0].value) not in ROLES:
        raise CertificateError("certificate carries no smc identity (CN name and OU role)")
    return Identity(check_name(str(cn[0].value)), str(ou[0].value))


def verify_cert(
    pem: bytes, ca_pem: bytes, role: str | tuple[str, ...] | None = None, name: str | None = None
) -> Identity:
    """The identity of a certificate issued by the CA; raises :class:`CertificateError` when it
    was not issued by this CA, is outside its validity period, or has another role or name."""
    cert = load_cert(pem)
    ca = load_cert(ca_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError("certificate was not issued by this deployment's CA") from None
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateError("certificate is expired or not yet valid")
    ident = identity_of(cert)
    roles = (role,) if isinstance(role, str) else role
    if roles is not None and ident.role not in roles:
        raise CertificateError(
            f"{ident} presented a certificate for role {ident.role!r}, "
            f"expected {' or '.join(roles)}"
        )
    if name is not None and ident.name != name:
        raise CertificateError(f"certificate names {ident.name!r}, expected {name!r}")
    return ident


# ---------------------------------------------------------------------------------- signatures


def sign(key_pem: bytes, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature of ``data`` (callers sign canonical encodings only)."""
    key = serialization.load_pem_private_key(key_pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError("signing key is not an EC key")
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_signature(cert_pem: bytes, data: bytes, signature: bytes, what: str) -> None:
    """Raise :class:`CertificateError` unless ``signature`` over ``data`` is by the cert's key."""
    pub = load_cert(cert_pem).public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise CertificateError(f"{what}: certificate key is not an EC key")
    try:
        pub.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CertificateError(f"{what}: signature does not verify") from None


# ---------------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """A process's certificate, private key and the CA it trusts (all PEM)."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path, ca: str | Path) -> Credentials:
        return cls(Path(cert).read_bytes(), Path(key).read_bytes(), Path(ca).read_bytes())

    @classmethod
    def from_dir(cls, directory: str | Path, name: str) -> Credentials:
        """``<dir>/<name>.crt``, ``<dir>/<name>.key`` and ``<dir>/ca.crt`` (``smc keys`` layout)."""
        d = Path(directory)
        return cls.from_files(d / f"{name}.crt", d / f"{name}.key", d / "ca.crt")

    @property
    def identity(self) -> Identity:
        return identity_of(load_cert(self.cert_pem))

    def sign(self, data: bytes) -> bytes:
        return sign(self.key_pem, data)
