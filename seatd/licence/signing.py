"""The licence file: an armoured, base64 envelope around a signed payload.

    -----BEGIN SEATD LICENCE-----
    base64 of {"alg":"Ed25519","kid":...,"payload":<base64>,"sig":<base64>}
    -----END SEATD LICENCE-----

The signature is Ed25519 over DOMAIN + payload bytes, so a signature made for anything else
(another product, another version of this format) never verifies as a licence. The daemon
trusts a set of vendor public keys by key id, which allows rotation: a new key is added to
the trusted set before licences signed with it are issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from seatclient.contract import LicenceReason

from seatd import filemodes
from seatd.errors import LicenceRejected
from seatd.journal import canonical
from seatd.licence.document import Licence, parse_payload

DOMAIN = b"seatd-licence-v1\x00"
ALG = "Ed25519"
BEGIN = "-----BEGIN SEATD LICENCE-----"
END = "-----END SEATD LICENCE-----"
KEY_ID_HEADER = "Key-Id: "
_WHITESPACE = re.compile(r"[ \t\r\n\x0b\x0c]+")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class TrustedKey:
    kid: str
    public: Ed25519PublicKey


def default_kid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(kid: str | None = None) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(kid or default_kid(private.public_key()), private)


def write_keys(key: SigningKey, private_path: Path, public_path: Path) -> None:
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # 0600 even over an existing file, whatever the umask (seatd.filemodes).
    with os.fdopen(filemodes.write_private(private_path), "wb") as out:
        out.write(f"{KEY_ID_HEADER}{key.kid}\n".encode() + pem)
    public_path.write_bytes(f"{KEY_ID_HEADER}{key.kid}\n".encode() + pub)


def _split(path: Path) -> tuple[str, bytes]:
    text = path.read_bytes()
    first, _, rest = text.partition(b"\n")
    if not first.startswith(KEY_ID_HEADER.encode()):
        raise ValueError(f"{path}: expected a first line '{KEY_ID_HEADER}<id>'")
    return first[len(KEY_ID_HEADER) :].decode().strip(), rest


def load_signing_key(path: Path) -> SigningKey:
    kid, pem = _split(path)
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return SigningKey(kid, private)


def load_trusted_key(path: Path) -> TrustedKey:
    kid, pem = _split(path)
    public = serialization.load_pem_public_key(pem)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return TrustedKey(kid, public)


TIME_DOMAIN = b"seatd-time-v1\x00"


def time_message(base_id: str, iso_time: str) -> bytes:
    """What the vendor signs to vouch for its clock to one base id."""
    return TIME_DOMAIN + f"{base_id}|{iso_time}".encode()


def verify_time(
    base_id: str, iso_time: str, kid: str, signature: bytes, trusted: dict[str, TrustedKey]
) -> bool:
    key = trusted.get(kid)
    if key is None:
        return False
    try:
        key.public.verify(signature, time_message(base_id, iso_time))
    except InvalidSignature:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign(licence: Licence, key: SigningKey) -> str:
    """The licence file's text."""
    payload = canonical(licence.to_payload())
    envelope = canonical(
        {
            "alg": ALG,
            "kid": key.kid,
            "payload": _b64(payload),
            "sig": _b64(key.private.sign(DOMAIN + payload)),
        }
    )
    body = _b64(envelope)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def _reject(reason: str, message: str) -> LicenceRejected:
    return LicenceRejected(reason, message)


def verify(text: str | bytes, trusted: dict[str, TrustedKey]) -> Licence:
    """The licence in `text`, or LicenceRejected saying precisely what is wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise _reject(LicenceReason.MALFORMED, "the licence file is not ASCII text") from None
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise _reject(
            LicenceReason.MALFORMED, f"no licence found: expected the lines {BEGIN} ... {END}"
        )
    # Copy and paste may add or drop line breaks and spaces, nothing else.
    body = _WHITESPACE.sub("", text[begin + len(BEGIN) : end])
    try:
        envelope = json.loads(base64.b64decode(body, validate=True))
        alg, kid = envelope["alg"], envelope["kid"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["sig"], validate=True)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise _reject(
            LicenceReason.MALFORMED, "the licence text is damaged: copy the whole file again"
        ) from None
    if alg != ALG or not isinstance(kid, str):
        raise _reject(LicenceReason.MALFORMED, f"unsupported signature algorithm {alg!r}")
    key = trusted.get(kid)
    if key is None:
        raise _reject(
            LicenceReason.UNKNOWN_KEY,
            f"the licence is signed with key {kid!r}, which this server does not "
            "trust: update seatd or add the vendor's new public key",
        )
    try:
        key.public.verify(signature, DOMAIN + payload)
    except InvalidSignature:
        raise _reject(
            LicenceReason.BAD_SIGNATURE,
            "the licence signature does not match: the file was altered or damaged",
        ) from None
    return parse_payload(payload)
