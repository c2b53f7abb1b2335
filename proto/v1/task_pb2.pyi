from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Program(_message.Message):
    __slots__ = ("canonical", "sha256")
    CANONICAL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    canonical: bytes
    sha256: str
    def __init__(self, canonical: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class SignedManifest(_message.Message):
    __slots__ = ("manifest", "signature", "client_cert")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERT_FIELD_NUMBER: _ClassVar[int]
    manifest: bytes
    signature: bytes
    client_cert: bytes
    def __init__(self, manifest: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., client_cert: _Optional[bytes] = ...) -> None: ...

class Participant(_message.Message):
    __slots__ = ("name", "role", "endpoint", "cert")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CERT_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    endpoint: str
    cert: bytes
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., endpoint: _Optional[str] = ..., cert: _Optional[bytes] = ...) -> None: ...

class Announcement(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class EncryptedResult(_message.Message):
    __slots__ = ("party", "nonce", "ciphertext")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    party: str
    nonce: bytes
    ciphertext: bytes
    def __init__(self, party: _Optional[str] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...
