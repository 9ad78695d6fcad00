"""A throwaway certificate authority for HTTPS fakes on 127.0.0.1, generated per test session.

The CA signs one server certificate (SAN IP 127.0.0.1 and DNS localhost), the way a cluster CA
signs a real API server's serving certificate; clients trust the CA alone, never the system
bundle (CI presets REQUESTS_CA_BUNDLE to it, so every client must be handed `ca_pem`).
Keys live in memory. `ssl` can only load a certificate chain from files, so `server_context()`
writes the pair to a private temporary directory and deletes it as soon as it is loaded.
"""

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for any test session, short enough that a leaked PEM is soon worthless.
VALIDITY = datetime.timedelta(days=1)
# Tolerates a client clock a little behind this machine's.
BACKDATE = datetime.timedelta(hours=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mutguard tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class TestCa:
    """A self-signed CA (CA=True) and a server certificate for 127.0.0.1 signed by it."""

    __test__ = False  # the name starts with "Test": keep pytest from collecting it as tests

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        not_before, not_after = now - BACKDATE, now + VALIDITY
        # P-256 keys: generated in milliseconds, unlike RSA, and every TLS stack accepts them.
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("mutguard test CA")
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_pem: bytes = ca_cert.public_bytes(serialization.Encoding.PEM)
        self._server_cert_pem = server_cert.public_bytes(serialization.Encoding.PEM)
        self._server_key_pem = server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.2+ server context presenting the server certificate (no client certificates)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only; they exist for the duration of this call.
        with tempfile.TemporaryDirectory(prefix="mutguard-tls-") as tmp:
            cert_file, key_file = Path(tmp, "server.crt"), Path(tmp, "server.key")
            cert_file.write_bytes(self._server_cert_pem)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as key_out:
                key_out.write(self._server_key_pem)
            context.load_cert_chain(cert_file, key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Client context that verifies the server (hostname included) against this CA only."""
        # With cadata given, create_default_context loads no system certificates.
        context = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
