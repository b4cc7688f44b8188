"""The pprof profile format (``perftools.profiles.Profile``) as protobuf message classes.

The wire format is described here in code, as a descriptor built field by field from the
published field numbers, and turned into classes by the ``protobuf`` runtime: no ``.proto``
file, no generated module and no compiler at build time. Only what advisor writes and its
tests read back is described; unknown fields of other writers are kept by protobuf anyway.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "perftools.profiles"

_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_UINT64 = descriptor_pb2.FieldDescriptorProto.TYPE_UINT64
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_ONE = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_MANY = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED

# message -> (field name, number, type, repeated?, message type name)
MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "Profile": [
        ("sample_type", 1, _MESSAGE, True, "ValueType"),
        ("sample", 2, _MESSAGE, True, "Sample"),
        ("mapping", 3, _MESSAGE, True, "Mapping"),
        ("location", 4, _MESSAGE, True, "Location"),
        ("function", 5, _MESSAGE, True, "Function"),
        ("string_table", 6, _STRING, True, ""),
        ("drop_frames", 7, _INT64, False, ""),
        ("keep_frames", 8, _INT64, False, ""),
        ("time_nanos", 9, _INT64, False, ""),
        ("duration_nanos", 10, _INT64, False, ""),
        ("period_type", 11, _MESSAGE, False, "ValueType"),
        ("period", 12, _INT64, False, ""),
        ("comment", 13, _INT64, True, ""),
        ("default_sample_type", 14, _INT64, False, ""),
    ],
    "ValueType": [("type", 1, _INT64, False, ""), ("unit", 2, _INT64, False, "")],
    "Sample": [
        ("location_id", 1, _UINT64, True, ""),
        ("value", 2, _INT64, True, ""),
        ("label", 3, _MESSAGE, True, "Label"),
    ],
    "Label": [("key", 1, _INT64, False, ""), ("str", 2, _INT64, False, ""), ("num", 3, _INT64, False, ""),
              ("num_unit", 4, _INT64, False, "")],
    "Mapping": [
        ("id", 1, _UINT64, False, ""),
        ("memory_start", 2, _UINT64, False, ""),
        ("memory_limit", 3, _UINT64, False, ""),
        ("file_offset", 4, _UINT64, False, ""),
        ("filename", 5, _INT64, False, ""),
        ("build_id", 6, _INT64, False, ""),
        ("has_functions", 7, _BOOL, False, ""),
        ("has_filenames", 8, _BOOL, False, ""),
        ("has_line_numbers", 9, _BOOL, False, ""),
        ("has_inline_frames", 10, _BOOL, False, ""),
    ],
    "Location": [
        ("id", 1, _UINT64, False, ""),
        ("mapping_id", 2, _UINT64, False, ""),
        ("address", 3, _UINT64, False, ""),
        ("line", 4, _MESSAGE, True, "Line"),
        ("is_folded", 5, _BOOL, False, ""),
    ],
    "Line": [("function_id", 1, _UINT64, False, ""), ("line", 2, _INT64, False, "")],
    "Function": [
        ("id", 1, _UINT64, False, ""),
        ("name", 2, _INT64, False, ""),
        ("system_name", 3, _INT64, False, ""),
        ("filename", 4, _INT64, False, ""),
        ("start_line", 5, _INT64, False, ""),
    ],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    described = descriptor_pb2.FileDescriptorProto(name="advisor/pprof_profile.proto", package=PACKAGE,
                                                   syntax="proto3")
    for message_name, fields in MESSAGES.items():
        message = described.message_type.add(name=message_name)
        for name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=_MANY if repeated else _ONE)
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    return described


def _classes() -> dict[str, Any]:
    # a private pool: a program that loaded another copy of profile.proto keeps its own
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}


_CLASSES: dict[str, Any] | None = None


def message_class(name: str) -> Any:
    """The class of one message of the format (``Profile``, ``Sample``, ...)."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _classes()
    return _CLASSES[name]
