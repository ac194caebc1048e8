"""DKIM key pairs: loading a signing key with the checks receivers apply, making a new one, and
the DNS record that publishes its public half. Shared by the notifier (which signs) and the
operator CLI (``hwcollab dkim keygen``)."""

from __future__ import annotations

import base64
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KeyAlgorithm = Literal["rsa", "ed25519"]
MIN_RSA_BITS = 2048


class DkimKeyError(ValueError):
    """A private key that cannot sign: not PEM, encrypted, or too weak."""


def load_signing_key(pem: bytes) -> SigningKey:
    """An unencrypted PEM private key (PKCS#8 or PKCS#1): RSA of 2048 bits or more, or Ed25519."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise DkimKeyError(
            "the DKIM private key is not an unencrypted PEM private key "
            f"(-----BEGIN PRIVATE KEY-----): {error}"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimKeyError(
                f"the DKIM RSA key has {key.key_size} bits; receivers ignore keys under "
                f"{MIN_RSA_BITS} bits: generate a new one (hwcollab dkim keygen)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DkimKeyError(
        f"the DKIM key is a {type(key).__name__}; DKIM signs with RSA (2048+ bits) or Ed25519"
    )


def algorithm_of(key: SigningKey) -> str:
    """``rsa`` or ``ed25519``: the ``k=`` of the DNS record."""
    return "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"


def public_key_record(key: SigningKey) -> str:
    """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        data = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k={algorithm_of(key)}; p={base64.b64encode(data).decode()}"


def generate_signing_key(
    algorithm: KeyAlgorithm = "rsa", *, rsa_bits: int = MIN_RSA_BITS
) -> SigningKey:
    """A new key pair: RSA (2048 bits unless told) or Ed25519."""
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if rsa_bits < MIN_RSA_BITS:
        raise DkimKeyError(f"RSA keys for DKIM need {MIN_RSA_BITS} bits or more")
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def private_key_pem(key: SigningKey) -> bytes:
    """The unencrypted PKCS#8 PEM that DKIM_PRIVATE_KEY (or its file) holds."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
