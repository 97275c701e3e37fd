"""Certificates and keys for the local cluster: one CA, a serving cert, a client cert per component.

Each component gets its own identity (``system:kube-controller-manager``, ``system:kube-scheduler``)
so the bootstrap RBAC roles apply and a component's missing permission shows up, as on a real
cluster; the admin is ``system:masters``. Written as PEM files under ``<dir>/pki``.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hack.cluster.base import NODE_IP

CLIENTS = {
    "admin": ("kube-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("kwok-controller", "system:masters"),
    "front-proxy": ("front-proxy-client", None),
    "prometheus": ("prometheus", None),
    # The real node (tier D): the Node authorizer knows a kubelet by this name and group.
    "kubelet": ("system:node:local-node-0", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),  # bound to system:node-proxier by bootstrap RBAC
}
# The real node's kubelet serves on the node address, and pods reach the apiserver there.
CLIENT_IPS = {"kubelet": ("127.0.0.1", NODE_IP)}
SERVING_NAMES = (
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Pki:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.root / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


def _issue(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    *,
    usage: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = (subject, key) if ca is None else (ca[0].subject, ca[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if ca is None:
        key_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(key_usage, critical=True)
    else:
        key_usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = builder.add_extension(key_usage, critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create(root: Path) -> Pki:
    """Create (or reuse) every certificate and key under ``root``."""
    pki = Pki(root)
    if pki.ca.exists() and pki.sa_pub.exists() and all(pki.cert(c).exists() for c in CLIENTS):
        return pki
    root.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_cert = _issue(_name("modelyard-local-ca"), ca_key, None, usage=[])
    _write_key(pki.key("ca"), ca_key)
    _write_cert(pki.ca, ca_cert)
    ca = (ca_cert, ca_key)
    serving_key = _key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVING_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "10.0.0.1", NODE_IP)]
    serving = _issue(
        _name("kube-apiserver"), serving_key, ca, usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans
    )
    _write_key(pki.key("apiserver"), serving_key)
    _write_cert(pki.cert("apiserver"), serving)
    for name, (common, org) in CLIENTS.items():
        key = _key()
        cert = _issue(
            _name(common, org),
            key,
            ca,
            usage=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
            sans=[
                x509.DNSName("localhost"),
                *(
                    x509.IPAddress(ipaddress.ip_address(ip))
                    for ip in CLIENT_IPS.get(name, ("127.0.0.1",))
                ),
            ],
        )
        _write_key(pki.key(name), key)
        _write_cert(pki.cert(name), cert)
    sa_key = _key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki
