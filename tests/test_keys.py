"""The deployment PKI: a CA, certificates carrying identity (name, role), signatures."""

from __future__ import annotations

from pathlib import Path

import pytest
from smc.hub import pki
from smc.party.cli import main


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ca")
    pki.create_ca(d, "test deployment")
    pki.issue(d, "party", "alice")
    pki.issue(d, "client", "analyst")
    pki.issue(d, "hub", "hub", sans=("hub.example.org", "10.0.0.7"))
    return d


def test_issued_certificate_carries_name_and_role(ca: Path) -> None:
    ca_pem = (ca / "ca.crt").read_bytes()
    ident = pki.verify_cert((ca / "alice.crt").read_bytes(), ca_pem)
    assert ident == pki.Identity("alice", "party")
    assert pki.Credentials.from_dir(ca, "analyst").identity == pki.Identity("analyst", "client")


def test_private_keys_are_private(ca: Path) -> None:
    assert (ca / "alice.key").stat().st_mode & 0o077 == 0
    assert (ca / "ca.key").stat().st_mode & 0o077 == 0


def test_role_and_name_are_enforced(ca: Path) -> None:
    ca_pem = (ca / "ca.crt").read_bytes()
    alice = (ca / "alice.crt").read_bytes()
    with pytest.raises(pki.CertificateError, match="expected client"):
        pki.verify_cert(alice, ca_pem, "client")
    with pytest.raises(pki.CertificateError, match="expected 'bob'"):
        pki.verify_cert(alice, ca_pem, "party", "bob")


def test_certificate_from_another_ca_is_refused(ca: Path, tmp_path: Path) -> None:
    pki.create_ca(tmp_path, "someone else")
    pki.issue(tmp_path, "party", "alice")
    with pytest.raises(pki.CertificateError, match="not issued by this deployment's CA"):
        pki.verify_cert((tmp_path / "alice.crt").read_bytes(), (ca / "ca.crt").read_bytes())


def test_hub_certificate_lists_its_addresses(ca: Path) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((ca / "hub.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert {"hub", "hub.example.org", "localhost"} <= names
    assert {"127.0.0.1", "10.0.0.7"} <= ips


def test_signatures_verify_and_refuse_changes(ca: Path) -> None:
    creds = pki.Credentials.from_dir(ca, "analyst")
    sig = creds.sign(b"manifest")
    pki.verify_signature(creds.cert_pem, b"manifest", sig, "manifest")
    with pytest.raises(pki.CertificateError, match="does not verify"):
        pki.verify_signature(creds.cert_pem, b"manifesT", sig, "manifest")
    other = (ca / "alice.crt").read_bytes()
    with pytest.raises(pki.CertificateError, match="does not verify"):
        pki.verify_signature(other, b"manifest", sig, "manifest")


def test_refuses_bad_names_roles_and_overwriting_a_ca(ca: Path) -> None:
    with pytest.raises(pki.CertificateError, match="not a valid name"):
        pki.issue(ca, "party", "../evil")
    with pytest.raises(pki.CertificateError, match="unknown role"):
        pki.issue(ca, "admin", "root")
    with pytest.raises(pki.CertificateError, match="refusing to replace"):
        pki.create_ca(ca)


def test_keys_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 0
    assert main(["keys", "issue", "--dir", str(tmp_path), "--role", "dealer", "--name", "d1"]) == 0
    ident = pki.verify_cert((tmp_path / "d1.crt").read_bytes(), (tmp_path / "ca.crt").read_bytes())
    assert ident.role == "dealer"
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
