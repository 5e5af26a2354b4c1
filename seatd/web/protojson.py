"""Messages to and from the JSON the API speaks: protobuf's canonical JSON mapping, with proto
field names, every field without presence written, and 64-bit integers as numbers while
exact (`openapi.py` describes exactly this form)."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from seatd.errors import InvalidArgument

M = TypeVar("M", bound=Message)


def to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
        unquote_int64_if_possible=True,
    )


def from_json(body: Any, message: M) -> M:
    """`message` filled from a JSON object; a field that is unknown or of the wrong type is
    INVALID_ARGUMENT."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise InvalidArgument("body", str(exc)) from None
    return message
