"""Chunk encoding (column codecs) and the chunks file of a block."""

from signalfire.tsdb.chunks.chunk_file import (
    ChunkReader,
    ChunkWriter,
    DecodedChunk,
    decode_record,
    encode_ts_chunk,
    encode_value_chunk,
)
from signalfire.tsdb.chunks.codec import (
    decode_float_segments,
    decode_int_segments,
    encode_float_segments,
    encode_int_segments,
)

__all__ = [
    "ChunkReader",
    "ChunkWriter",
    "DecodedChunk",
    "decode_float_segments",
    "decode_int_segments",
    "decode_record",
    "encode_float_segments",
    "encode_int_segments",
    "encode_ts_chunk",
    "encode_value_chunk",
]
