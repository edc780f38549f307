"""Read the constant tensors (weights, biases) straight from a ``.tflite`` file (numpy only).

A TFLite model is a FlatBuffer (schema: tensorflow/lite/schema/schema.fbs). This reads just
enough of it, the tensors of each subgraph and the buffers that hold their data, to count what
is stored: the model card's sparsity is counted here from the file's bytes, not taken from
the training run.

    for t in constant_tensors(Path("models/bcg_quality.tflite").read_bytes()):
        print(t.name, t.values.dtype, t.values.shape)
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

__all__ = ["FULLY_CONNECTED", "StoredTensor", "constant_tensors", "verify", "weight_sparsity"]

# TensorType enum of the schema -> numpy dtype (the types this project's models use).
FULLY_CONNECTED = 9  #: BuiltinOperator of the schema
_DTYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}


class StoredTensor(NamedTuple):
    """A tensor whose values are stored in the file."""

    name: str
    values: np.ndarray  #: shaped as declared, of the stored type


def _read(buf: bytes, fmt: str, pos: int) -> int:
    """One little-endian scalar at ``pos``; ValueError when it lies outside the buffer."""
    size = struct.calcsize("<" + fmt)
    if pos < 0 or pos + size > len(buf):
        raise ValueError(f"offset {pos} outside the file ({len(buf)} bytes)")
    return struct.unpack_from("<" + fmt, buf, pos)[0]


class _Table:
    """A FlatBuffer table: fields by index through its vtable; every offset is bounds-checked."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - _read(buf, "i", pos)
        self._vsize = _read(buf, "H", vtable)
        if self._vsize < 4 or self._vsize % 2 or vtable + self._vsize > len(buf):
            raise ValueError(f"bad vtable at {vtable}")
        self._vtable = vtable
        self._tsize = _read(buf, "H", vtable + 2)
        if pos + self._tsize > len(buf):
            raise ValueError(f"table at {pos} runs past the end of the file")

    def _field(self, index: int) -> int | None:
        entry = 4 + 2 * index
        if entry >= self._vsize:
            return None
        offset = _read(self.buf, "H", self._vtable + entry)
        if offset and offset >= self._tsize:
            raise ValueError(f"field {index} of the table at {self.pos} outside it")
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return default if at is None else _read(self.buf, fmt, at)

    def _vector(self, index: int, item: int) -> tuple[int, int] | None:
        at = self._field(index)
        if at is None:
            return None
        start = at + _read(self.buf, "I", at)
        n = _read(self.buf, "I", start)
        if start + 4 + n * item > len(self.buf):
            raise ValueError(f"vector at {start} ({n} items) runs past the end of the file")
        return start + 4, n

    def tables(self, index: int) -> list[_Table]:
        vec = self._vector(index, 4)
        if vec is None:
            return []
        first, n = vec
        return [
            _Table(self.buf, p + _read(self.buf, "I", p)) for p in range(first, first + 4 * n, 4)
        ]

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.buf, at + _read(self.buf, "I", at))

    def array(self, index: int, dtype: type) -> np.ndarray:
        dt = np.dtype(dtype).newbyteorder("<")
        vec = self._vector(index, dt.itemsize)
        if vec is None:
            return np.empty(0, dtype=dt)
        first, n = vec
        return np.frombuffer(self.buf, dtype=dt, count=n, offset=first)

    def string(self, index: int) -> str:
        return bytes(self.array(index, np.uint8)).decode("utf-8", "replace")


def _model(content: bytes) -> _Table:
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError("not a TFLite model (no TFL3 identifier)")
    return _Table(content, struct.unpack_from("<I", content, 0)[0])


def constant_tensors(content: bytes) -> list[StoredTensor]:
    """Every tensor of every subgraph whose data is stored in the file's buffers.

    Raises:
        ValueError: when ``content`` is not a TFLite FlatBuffer or is damaged.
    """
    return [t for t, _ in _stored(content)]


def _stored(content: bytes) -> list[tuple[StoredTensor, tuple[int, int]]]:
    """Stored tensors with their (subgraph, tensor) index."""
    model = _model(content)
    try:
        buffers = [b.array(0, np.uint8) for b in model.tables(4)]  # Model.buffers[].data
        out = []
        for g, subgraph in enumerate(model.tables(2)):  # Model.subgraphs
            for i, tensor in enumerate(subgraph.tables(0)):  # SubGraph.tensors
                data = buffers[tensor.scalar(2, "I")]  # Tensor.buffer
                dtype = _DTYPES.get(tensor.scalar(1, "b"))  # Tensor.type
                if data.size == 0 or dtype is None:
                    continue
                shape = tuple(int(v) for v in tensor.array(0, np.int32))  # Tensor.shape
                values = np.frombuffer(data.tobytes(), dtype=np.dtype(dtype).newbyteorder("<"))
                name = tensor.string(3)  # Tensor.name
                out.append((StoredTensor(name, values.reshape(shape)), (g, i)))
        return out
    except (struct.error, IndexError, ValueError) as exc:
        raise ValueError(f"damaged TFLite model ({exc})") from exc


def _fully_connected_weights(content: bytes) -> set[tuple[int, int]]:
    """(subgraph, tensor) of the weight input of every FULLY_CONNECTED operator."""
    model = _model(content)
    codes = []
    for code in model.tables(1):  # Model.operator_codes
        # builtin_code (field 3) superseded the int8 deprecated_builtin_code (field 0)
        codes.append(max(code.scalar(0, "b"), code.scalar(3, "i")))
    out = set()
    for g, subgraph in enumerate(model.tables(2)):
        for op in subgraph.tables(3):  # SubGraph.operators
            if codes[op.scalar(0, "I")] == FULLY_CONNECTED:  # Operator.opcode_index
                inputs = op.array(1, np.int32)  # Operator.inputs: data, weights, bias
                out.add((g, int(inputs[1])))
    return out


def verify(content: bytes) -> None:
    """Check the structure of a TFLite file before an interpreter sees it.

    The TFLite interpreter trusts the FlatBuffer it is given: a truncated or damaged file can
    crash the process instead of raising. This walks every table, vector and index the
    interpreter will follow (operator codes, subgraphs, tensors and their buffers, operators
    and their options) and checks each lies inside the file and refers to something that
    exists, and that each stored tensor holds exactly the bytes its shape and type need.

    Raises:
        ValueError: naming what is wrong.
    """
    model = _model(content)
    try:
        n_codes = len(model.tables(1))
        buffers = model.tables(4)
        sizes = [b.array(0, np.uint8).size for b in buffers]
        for b in buffers:  # Buffer.offset/.size: data outside the flatbuffer (large models)
            if b.scalar(1, "Q") + b.scalar(2, "Q") > len(content):
                raise ValueError("a buffer's external data lies outside the file")
        model.string(3)  # description
        for meta in model.tables(6):  # Metadata: name, buffer
            meta.string(0)
            if meta.scalar(1, "I") >= len(buffers):
                raise ValueError("metadata names no buffer")
        subgraphs = model.tables(2)
        if not subgraphs or n_codes == 0:
            raise ValueError("no subgraph or no operator")
        for g, subgraph in enumerate(subgraphs):
            tensors = subgraph.tables(0)
            for i, tensor in enumerate(tensors):
                shape = tensor.array(0, np.int32)
                if np.any(shape < 0) or shape.size > 8:
                    raise ValueError(f"tensor {i} of subgraph {g}: shape {shape.tolist()}")
                buffer = tensor.scalar(2, "I")
                if buffer >= len(buffers):
                    raise ValueError(f"tensor {i} of subgraph {g}: no buffer {buffer}")
                dtype = _DTYPES.get(tensor.scalar(1, "b"))
                if sizes[buffer] and (
                    dtype is None or sizes[buffer] != int(np.prod(shape)) * np.dtype(dtype).itemsize
                ):
                    raise ValueError(f"tensor {i} of subgraph {g}: data does not fit its shape")
                tensor.string(3)
                q = tensor.table(4)  # QuantizationParameters: scale, zero_point
                if q is not None:
                    q.array(2, np.float32), q.array(3, np.int64)
            valid = range(-1, len(tensors))
            for field in (1, 2):  # SubGraph.inputs, .outputs
                if not np.all(np.isin(subgraph.array(field, np.int32), valid[1:])):
                    raise ValueError(f"subgraph {g}: an input or output names no tensor")
            for k, op in enumerate(subgraph.tables(3)):
                if op.scalar(0, "I") >= n_codes:
                    raise ValueError(f"operator {k} of subgraph {g}: unknown operator code")
                for field in (1, 2):  # Operator.inputs, .outputs
                    if not np.all(np.isin(op.array(field, np.int32), valid)):
                        raise ValueError(f"operator {k} of subgraph {g}: names no tensor")
                op.table(4)  # builtin options (a union table)
                op.array(5, np.uint8)  # custom options
        for sig in model.tables(7):  # SignatureDef: inputs, outputs (TensorMap), key, subgraph
            if sig.scalar(4, "I") >= len(subgraphs):
                raise ValueError("a signature names no subgraph")
            n_tensors = len(subgraphs[sig.scalar(4, "I")].tables(0))
            for field in (0, 1):
                for tensor_map in sig.tables(field):
                    tensor_map.string(0)
                    if tensor_map.scalar(1, "I") >= n_tensors:
                        raise ValueError("a signature names no tensor")
            sig.string(2)
    except (struct.error, IndexError) as exc:
        raise ValueError(f"damaged TFLite model ({exc})") from exc


def weight_sparsity(content: bytes) -> dict[str, tuple[int, int]]:
    """(zero, total) stored values: ``weights``, the weight matrices of the fully connected
    layers; ``all``, every stored number (weights, biases, the input standardisation)."""
    kernels = _fully_connected_weights(content)
    out = {"weights": (0, 0), "all": (0, 0)}
    for tensor, where in _stored(content):
        zero, total = int(np.count_nonzero(tensor.values == 0)), int(tensor.values.size)
        keys = ("weights", "all") if where in kernels else ("all",)
        for key in keys:
            out[key] = (out[key][0] + zero, out[key][1] + total)
    return out
