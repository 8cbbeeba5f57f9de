"""Read a TensorFlow checkpoint (a "tensor bundle", TF1 Saver or TF2 object-based) without TensorFlow.

A checkpoint PREFIX is two files or more:

- PREFIX.index: an SSTable in LevelDB's format (footer -> index block -> data blocks of prefix-compressed
  key/value entries, each block followed by a type byte and a masked CRC32-C). Keys are tensor names; each
  value is a BundleEntryProto (dtype, shape, shard_id, offset, size, crc32c); the empty key holds the
  BundleHeaderProto (number of shards, endianness).
- PREFIX.data-SSSSS-of-NNNNN: the tensors' raw bytes, at the entry's offset and size.

The protobuf fields needed are decoded by hand. Any fault is a CheckpointError naming the file and, where
known, the tensor.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c as _crc32c
import numpy as np

from ..model.checkpoint import CheckpointError

FOOTER_BYTES = 48  # two block handles padded to 40 bytes, then the 8-byte magic number
TABLE_MAGIC = 0xDB4775248B80FB57
BLOCK_TRAILER = 5  # compression type (1 byte) + masked crc32c (4 bytes)
NO_COMPRESSION, SNAPPY = 0, 1

# tensorflow/core/framework/types.proto: DataType -> numpy (little-endian)
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2",
          22: "<u4", 23: "<u8"}
DT_STRING = 7
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}


# ---- CRC32-C (Castagnoli), as LevelDB and TensorFlow mask it ---------------------------------------------
def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32-C of data, extending `crc` (a CRC of the bytes before it)."""
    return _crc32c.crc32c(data, value=crc)


def unmask_crc(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---- varints and protobuf ------------------------------------------------------------------------------
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); IndexError when the buffer ends inside it."""
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of every field of a protobuf message: ints for varint and fixed fields, bytes
    for length-delimited ones."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("length-delimited field runs past the message")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def as_signed(value: int) -> int:
    """A varint int32/int64 field's value (negative numbers are 64-bit two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class TensorEntry:
    """One BundleEntryProto: where a tensor's bytes lie and what they hold."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"DataType {self.dtype}")


def parse_entry(name: str, value: bytes) -> TensorEntry:
    dtype, shape, shard_id, offset, size, crc, sliced = 0, (), 0, 0, 0, None, False
    for number, field in proto_fields(value):
        if number == 1:
            dtype = int(field)
        elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1)
            dims = []
            for n, dim in proto_fields(bytes(field)):
                if n == 2:
                    dims.append(next((as_signed(int(v)) for k, v in proto_fields(bytes(dim)) if k == 1), 0))
            shape = tuple(dims)
        elif number == 3:
            shard_id = int(field)
        elif number == 4:
            offset = int(field)
        elif number == 5:
            size = int(field)
        elif number == 6:
            crc = int(field)
        elif number == 7:
            sliced = True
    return TensorEntry(name, dtype, shape, shard_id, offset, size, crc, sliced)


# ---- the SSTable ---------------------------------------------------------------------------------------
class _Table:
    """The key/value pairs of a LevelDB-format table held in memory (an index file is small)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.buf = path.read_bytes()

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"TensorFlow checkpoint index {self.path} is truncated or corrupt: {what}")

    def block(self, offset: int, size: int, what: str) -> bytes:
        end = offset + size + BLOCK_TRAILER
        if end > len(self.buf):
            raise self.fail(f"{what} at bytes {offset}..{end} lies past the end of the file ({len(self.buf)} bytes)")
        contents = self.buf[offset : offset + size]
        kind = self.buf[offset + size]
        (masked,) = struct.unpack_from("<I", self.buf, offset + size + 1)
        if unmask_crc(masked) != crc32c(contents + bytes([kind])):
            raise self.fail(f"{what} fails its CRC check")
        if kind == SNAPPY:
            raise CheckpointError(f"TensorFlow checkpoint index {self.path}: {what} is snappy-compressed, which this "
                                  "reader does not decode (TensorFlow writes tensor bundles uncompressed)")
        if kind != NO_COMPRESSION:
            raise self.fail(f"{what} has unknown compression type {kind}")
        return contents

    def entries(self) -> list[tuple[bytes, bytes]]:
        if len(self.buf) < FOOTER_BYTES:
            raise self.fail(f"{len(self.buf)} bytes, shorter than a table footer")
        footer = self.buf[-FOOTER_BYTES:]
        if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
            raise self.fail("the table footer's magic number is wrong")
        try:
            _, pos = read_varint(footer, 0)  # metaindex handle: unused
            _, pos = read_varint(footer, pos)
            index_offset, pos = read_varint(footer, pos)
            index_size, _ = read_varint(footer, pos)
            out: list[tuple[bytes, bytes]] = []
            for _, handle in self.block_entries(self.block(index_offset, index_size, "the index block")):
                offset, pos = read_varint(handle, 0)
                size, _ = read_varint(handle, pos)
                out.extend(self.block_entries(self.block(offset, size, f"the data block at byte {offset}")))
        except (IndexError, ValueError, struct.error) as exc:
            raise self.fail(str(exc) or "an entry runs past its block") from None
        return out

    @staticmethod
    def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
        """Entries of one block: shared-prefix keys, up to the restart array at its end."""
        (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
        end = len(block) - 4 - 4 * n_restarts
        if end < 0:
            raise ValueError("a block's restart array is longer than the block")
        out, key, pos = [], b"", 0
        while pos < end:
            shared, pos = read_varint(block, pos)
            unshared, pos = read_varint(block, pos)
            length, pos = read_varint(block, pos)
            if shared > len(key) or pos + unshared + length > end:
                raise ValueError("an entry runs past its block")
            key = key[:shared] + block[pos : pos + unshared]
            pos += unshared
            out.append((key, block[pos : pos + length]))
            pos += length
        return out


# ---- the checkpoint ------------------------------------------------------------------------------------
def resolve_prefix(path: str | Path) -> Path:
    """The checkpoint prefix from PREFIX, PREFIX.index, a PREFIX.data-* file, or a folder holding a `checkpoint`
    state file or a single *.index."""
    path = Path(path)
    if path.suffix == ".index":
        return path.with_suffix("")
    if ".data-" in path.name:
        return path.with_name(path.name.split(".data-")[0])
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            for line in state.read_text().splitlines():
                if line.startswith("model_checkpoint_path:"):
                    name = Path(line.split(":", 1)[1].strip().strip('"'))
                    return name if name.is_absolute() else path / name
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        raise CheckpointError(f"no TensorFlow checkpoint in {path}: give the prefix (PREFIX of PREFIX.index); "
                              f"it holds {len(indexes)} .index files")
    return path


class TFCheckpoint:
    """The tensors of a TensorFlow checkpoint: `entries` (name -> TensorEntry), `read(name)` -> numpy."""

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = resolve_prefix(prefix)
        self.index_path = Path(f"{self.prefix}.index")
        if not self.index_path.is_file():
            raise CheckpointError(f"no TensorFlow checkpoint at {self.prefix}: {self.index_path.name} is missing")
        table = _Table(self.index_path)
        self.num_shards, self.entries = 1, {}
        header_seen = False
        for key, value in table.entries():
            try:
                if key == b"":  # BundleHeaderProto: num_shards = 1, endianness = 2 (0: little)
                    header = dict(proto_fields(value))
                    self.num_shards = int(header.get(1, 1))
                    if int(header.get(2, 0)) != 0:
                        raise CheckpointError(f"{self.index_path}: big-endian checkpoints are not supported")
                    header_seen = True
                    continue
                name = key.decode()
                self.entries[name] = parse_entry(name, value)
            except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
                raise table.fail(f"entry {key!r}: {exc}") from None
        if not header_seen:
            raise table.fail("it has no bundle header (the entry under the empty key)")
        missing = [p.name for p in self.data_paths() if not p.is_file()]
        if missing:
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix}: data file {missing[0]} is missing")

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def data_paths(self) -> list[Path]:
        return [self.data_path(s) for s in range(self.num_shards)]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def read(self, name: str) -> np.ndarray:
        """The tensor `name` as a numpy array of its dtype and shape (strings: an object array of bytes)."""
        if name not in self.entries:
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix} has no tensor {name!r}")
        e = self.entries[name]
        if e.sliced:
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix}: tensor {name!r} is saved in slices "
                                  "(a partitioned variable), which this reader does not join")
        if e.dtype not in DTYPES and e.dtype != DT_STRING:
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix}: tensor {name!r} has dtype {e.dtype_name}, "
                                  "which this reader does not decode")
        path = self.data_path(e.shard_id)
        if e.shard_id >= self.num_shards or not path.is_file():
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix}: tensor {name!r} lies in missing data file "
                                  f"{path.name}")
        with open(path, "rb") as f:
            f.seek(e.offset)
            raw = f.read(e.size)
        if len(raw) != e.size:
            raise CheckpointError(f"TensorFlow checkpoint data file {path} is truncated: tensor {name!r} needs bytes "
                                  f"{e.offset}..{e.offset + e.size}, the file has {path.stat().st_size}")
        if e.dtype == DT_STRING:
            return self._strings(raw, e, path)
        if e.crc32c is not None and unmask_crc(e.crc32c) != crc32c(raw):
            raise self._corrupt(path, name)
        dtype = np.dtype(DTYPES[e.dtype])
        count = int(np.prod(e.shape, dtype=np.int64))
        if count * dtype.itemsize != e.size:
            raise CheckpointError(f"TensorFlow checkpoint {self.prefix}: tensor {name!r} of shape {e.shape} and dtype "
                                  f"{e.dtype_name} should take {count * dtype.itemsize} bytes, its entry says {e.size}")
        return np.frombuffer(raw, dtype=dtype).reshape(e.shape).astype(dtype.newbyteorder("="))

    @staticmethod
    def _corrupt(path: Path, name: str) -> CheckpointError:
        return CheckpointError(f"TensorFlow checkpoint data file {path} is corrupt: tensor {name!r} fails its CRC check")

    def _strings(self, raw: bytes, e: TensorEntry, path: Path) -> np.ndarray:
        """A string tensor: varint lengths, a 4-byte checksum of them, then the bytes one after another. Its CRC
        runs over the lengths as 4-byte integers (8 above 4 GiB), the checksum's bytes and the strings."""
        count = int(np.prod(e.shape, dtype=np.int64))
        try:
            lengths, pos = [], 0
            for _ in range(count):
                n, pos = read_varint(raw, pos)
                lengths.append(n)
            crc = crc32c(b"".join(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n) for n in lengths))
            crc = crc32c(raw[pos : pos + 4], crc)
            pos += 4
            items = []
            for n in lengths:
                if pos + n > len(raw):
                    raise IndexError
                items.append(raw[pos : pos + n])
                crc = crc32c(items[-1], crc)
                pos += n
        except (IndexError, ValueError):
            raise CheckpointError(f"TensorFlow checkpoint data file {path}: string tensor {e.name!r} is corrupt") from None
        if e.crc32c is not None and unmask_crc(e.crc32c) != crc:
            raise self._corrupt(path, e.name)
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(e.shape)

    def read_all(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.names()}


def read_tf_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at `prefix`, by name."""
    return TFCheckpoint(prefix).read_all()
