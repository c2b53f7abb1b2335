from smc.proto.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Ack(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("manifest", "program")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    manifest: _task_pb2.SignedManifest
    program: _task_pb2.Program
    def __init__(self, manifest: _Optional[_Union[_task_pb2.SignedManifest, _Mapping]] = ..., program: _Optional[_Union[_task_pb2.Program, _Mapping]] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("task_id", "after_seq")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after_seq: int
    def __init__(self, task_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "seq", "time_ms", "kind", "party", "message", "state")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    time_ms: int
    kind: str
    party: str
    message: str
    state: str
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ..., time_ms: _Optional[int] = ..., kind: _Optional[str] = ..., party: _Optional[str] = ..., message: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("task_id", "state", "reason", "participants", "announcements", "results", "created_ms", "finished_ms")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENTS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: str
    reason: str
    participants: _containers.RepeatedCompositeFieldContainer[_task_pb2.Participant]
    announcements: _containers.RepeatedCompositeFieldContainer[_task_pb2.Announcement]
    results: _containers.RepeatedCompositeFieldContainer[_task_pb2.EncryptedResult]
    created_ms: int
    finished_ms: int
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., participants: _Optional[_Iterable[_Union[_task_pb2.Participant, _Mapping]]] = ..., announcements: _Optional[_Iterable[_Union[_task_pb2.Announcement, _Mapping]]] = ..., results: _Optional[_Iterable[_Union[_task_pb2.EncryptedResult, _Mapping]]] = ..., created_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListPartiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartyInfo(_message.Message):
    __slots__ = ("name", "role", "endpoint", "online", "datasets", "last_seen_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    endpoint: str
    online: bool
    datasets: _containers.RepeatedScalarFieldContainer[str]
    last_seen_ms: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., endpoint: _Optional[str] = ..., online: _Optional[bool] = ..., datasets: _Optional[_Iterable[str]] = ..., last_seen_ms: _Optional[int] = ...) -> None: ...

class ListPartiesReply(_message.Message):
    __slots__ = ("parties",)
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    parties: _containers.RepeatedCompositeFieldContainer[PartyInfo]
    def __init__(self, parties: _Optional[_Iterable[_Union[PartyInfo, _Mapping]]] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("endpoint", "datasets", "suites", "version")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    SUITES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    suites: _containers.RepeatedScalarFieldContainer[str]
    version: str
    def __init__(self, endpoint: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., suites: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("heartbeat_interval_s", "hub_name", "relay_port")
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    HUB_NAME_FIELD_NUMBER: _ClassVar[int]
    RELAY_PORT_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_s: float
    hub_name: str
    relay_port: int
    def __init__(self, heartbeat_interval_s: _Optional[float] = ..., hub_name: _Optional[str] = ..., relay_port: _Optional[int] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskOffer(_message.Message):
    __slots__ = ("task_id", "manifest", "program", "participants")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    manifest: _task_pb2.SignedManifest
    program: _task_pb2.Program
    participants: _containers.RepeatedCompositeFieldContainer[_task_pb2.Participant]
    def __init__(self, task_id: _Optional[str] = ..., manifest: _Optional[_Union[_task_pb2.SignedManifest, _Mapping]] = ..., program: _Optional[_Union[_task_pb2.Program, _Mapping]] = ..., participants: _Optional[_Iterable[_Union[_task_pb2.Participant, _Mapping]]] = ...) -> None: ...

class TaskStart(_message.Message):
    __slots__ = ("task_id", "announcements")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENTS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    announcements: _containers.RepeatedCompositeFieldContainer[_task_pb2.Announcement]
    def __init__(self, task_id: _Optional[str] = ..., announcements: _Optional[_Iterable[_Union[_task_pb2.Announcement, _Mapping]]] = ...) -> None: ...

class TaskCancel(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PartyCommand(_message.Message):
    __slots__ = ("offer", "start", "cancel")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    offer: TaskOffer
    start: TaskStart
    cancel: TaskCancel
    def __init__(self, offer: _Optional[_Union[TaskOffer, _Mapping]] = ..., start: _Optional[_Union[TaskStart, _Mapping]] = ..., cancel: _Optional[_Union[TaskCancel, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("running", "audit_head")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HEAD_FIELD_NUMBER: _ClassVar[int]
    running: _containers.RepeatedScalarFieldContainer[str]
    audit_head: str
    def __init__(self, running: _Optional[_Iterable[str]] = ..., audit_head: _Optional[str] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("registered",)
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    registered: bool
    def __init__(self, registered: _Optional[bool] = ...) -> None: ...

class OfferAnswer(_message.Message):
    __slots__ = ("task_id", "accept", "reason", "announcement")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    accept: bool
    reason: str
    announcement: _task_pb2.Announcement
    def __init__(self, task_id: _Optional[str] = ..., accept: _Optional[bool] = ..., reason: _Optional[str] = ..., announcement: _Optional[_Union[_task_pb2.Announcement, _Mapping]] = ...) -> None: ...

class TaskReport(_message.Message):
    __slots__ = ("task_id", "kind", "message", "rounds", "bytes_sent", "results", "audit_head")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HEAD_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    message: str
    rounds: int
    bytes_sent: int
    results: _containers.RepeatedCompositeFieldContainer[_task_pb2.EncryptedResult]
    audit_head: str
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., rounds: _Optional[int] = ..., bytes_sent: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_task_pb2.EncryptedResult, _Mapping]]] = ..., audit_head: _Optional[str] = ...) -> None: ...

class RelayHello(_message.Message):
    __slots__ = ("version", "direction", "channel")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    version: int
    direction: str
    channel: str
    def __init__(self, version: _Optional[int] = ..., direction: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class RelayAccept(_message.Message):
    __slots__ = ("channel_key",)
    CHANNEL_KEY_FIELD_NUMBER: _ClassVar[int]
    channel_key: bytes
    def __init__(self, channel_key: _Optional[bytes] = ...) -> None: ...

class RelayFrame(_message.Message):
    __slots__ = ("task_id", "peer", "seq", "last", "payload", "error", "frame_bytes")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    peer: str
    seq: int
    last: bool
    payload: bytes
    error: str
    frame_bytes: int
    def __init__(self, task_id: _Optional[str] = ..., peer: _Optional[str] = ..., seq: _Optional[int] = ..., last: _Optional[bool] = ..., payload: _Optional[bytes] = ..., error: _Optional[str] = ..., frame_bytes: _Optional[int] = ...) -> None: ...
