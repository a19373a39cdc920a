"""A Faust codec for pydantic models: orjson bytes out, plain JSON values in."""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs
from pydantic import BaseModel

from streams import json_bytes

CODEC = "pydantic_orjson"


class PydanticCodec(codecs.Codec):
    """Serialises a model with ``model_dump(mode="json")``; the reader validates the dict."""

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, BaseModel):
            obj = obj.model_dump(mode="json")
        return json_bytes.dumps(obj)  # table keys and values are kept until a flush persists

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def register_codec() -> str:
    """Register the codec with Faust (idempotent) and return its name."""
    codecs.register(CODEC, PydanticCodec())
    return CODEC
