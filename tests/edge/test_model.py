"""The TFLite runtime: golden outputs, int8 against float, and every way a model file can be bad."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import types

import numpy as np
import pytest

from edge import model as model_mod
from edge.errors import BedsideError
from edge.model import QualityModel
from edge.quality import FEATURE_NAMES, STATES, QualityGate
from models import FLOAT_MODEL_PATH, GOLDEN_PATH, MODEL_PATH


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_PATH) as data:
        return {k: data[k] for k in data.files}


def test_the_packaged_model_loads_with_the_gate_shape() -> None:
    m = QualityModel(n_features=len(FEATURE_NAMES), n_classes=len(STATES))
    assert m.path == MODEL_PATH
    assert m.quantized
    assert (m.n_features, m.n_classes) == (len(FEATURE_NAMES), len(STATES))


def test_golden_vectors(golden) -> None:
    # Outputs recorded by TensorFlow's own interpreter at training time; the unit's runtime
    # must give the same numbers (int8 kernels are exact: at most one output quantum apart).
    m = QualityModel()
    quantum = 1.0 / 256
    for x, expected in zip(golden["features"], golden["probs"], strict=True):
        got = m.predict(x)
        np.testing.assert_allclose(got, expected, atol=quantum + 1e-7)
    assert len(golden["features"]) >= 8
    assert len({int(np.argmax(p)) for p in golden["probs"]}) >= 3  # not one class only


def test_repeated_calls_give_the_same_output(golden) -> None:
    m = QualityModel()
    first = [m.predict(x) for x in golden["features"]]
    again = [m.predict(x) for x in golden["features"][::-1]][::-1]
    np.testing.assert_array_equal(np.array(first), np.array(again))


def test_int8_agrees_with_float(golden) -> None:
    q, f = QualityModel(MODEL_PATH), QualityModel(FLOAT_MODEL_PATH)
    assert not f.quantized
    pq = np.array([q.predict(x) for x in golden["features"]])
    pf = np.array([f.predict(x) for x in golden["features"]])
    assert np.abs(pq - pf).max() < 0.15  # 0.103 measured; the classes agree below
    assert np.mean(pq.argmax(axis=1) == pf.argmax(axis=1)) >= 0.9


def test_quantization_uses_the_tensors_own_parameters(golden) -> None:
    # Done by hand from the input/output details, the same int8 numbers come out.
    m = QualityModel()
    interp = m._interp
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (si, zi), (so, zo) = inp["quantization"], out["quantization"]
    assert si > 0 and so > 0
    x = golden["features"][0]
    q = np.clip(np.round(x / si) + zi, -128, 127).astype(np.int8)[None, :]
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    expected = (interp.get_tensor(out["index"])[0].astype(np.float32) - zo) * so
    np.testing.assert_array_equal(m.predict(x), expected)


def test_a_wrong_feature_count_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="features"):
        QualityModel().predict(np.zeros(3))


def _code(path) -> str:
    with pytest.raises(BedsideError) as exc:
        QualityGate(250.0, model_path=path)
    assert " — " in str(exc.value)
    assert str(path.parent) not in str(exc.value)  # the file by its name only
    return exc.value.code


def test_a_missing_model_is_e220(tmp_path) -> None:
    assert _code(tmp_path / "nothing.tflite") == "E220"
    assert _code(tmp_path) == "E220"  # a directory


@pytest.mark.parametrize(
    "damage",
    ["empty", "random", "truncated_half", "truncated_header", "text"],
)
def test_a_corrupt_model_is_e221(tmp_path, damage: str) -> None:
    good = MODEL_PATH.read_bytes()
    content = {
        "empty": b"",
        "random": np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "truncated_half": good[: len(good) // 2],
        "truncated_header": good[:16],
        "text": b"version https://git-lfs.github.com/spec/v1\n",
    }[damage]
    # with a digest that matches: only the structure check stands between it and the runtime
    assert _code(_with_own_digest(tmp_path, content)) == "E221"


def _copy_with_digest(tmp_path, content: bytes, name: str = "model.tflite"):
    path = tmp_path / name
    path.write_bytes(content)
    digest = (MODEL_PATH.parent / (MODEL_PATH.name + ".sha256")).read_text().split()[0]
    (tmp_path / (name + ".sha256")).write_text(f"{digest}  {name}\n")
    return path


def test_a_model_that_differs_from_its_digest_is_e221(tmp_path) -> None:
    good = MODEL_PATH.read_bytes()
    assert QualityModel(_copy_with_digest(tmp_path, good)).quantized  # intact: loads
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01  # one bit, anywhere
    assert _code(_copy_with_digest(tmp_path, bytes(bad))) == "E221"


def _with_own_digest(tmp_path, content: bytes, name: str = "own.tflite"):
    path = tmp_path / name
    path.write_bytes(content)
    (tmp_path / (name + ".sha256")).write_text(hashlib.sha256(content).hexdigest() + "\n")
    return path


def test_a_model_with_its_own_digest_loads(tmp_path) -> None:
    assert QualityModel(_with_own_digest(tmp_path, MODEL_PATH.read_bytes())).quantized


@pytest.mark.parametrize("digest", [None, "", "not hex", "0" * 64])
def test_a_model_without_a_matching_digest_is_e221(tmp_path, monkeypatch, digest) -> None:
    copy = tmp_path / MODEL_PATH.name
    copy.write_bytes(MODEL_PATH.read_bytes())
    if digest is not None:
        (tmp_path / (MODEL_PATH.name + ".sha256")).write_text(digest)
    monkeypatch.setattr(model_mod, "DEFAULT_MODEL", copy)  # also as the packaged model
    for path in (copy, None):
        with pytest.raises(BedsideError) as exc:
            QualityModel(path)
        assert exc.value.code == "E221"


_PROBE = (
    "import sys, numpy as np\n"
    "from edge.errors import BedsideError\n"
    "from edge.quality import QualityGate\n"
    "for p in sys.argv[1:]:\n"
    "    try:\n"
    "        QualityGate(250.0, model_path=p).process(np.full(3000, 32768.0))\n"
    "        print('ok')\n"
    "    except BedsideError as e:\n"
    "        print(e.code)\n"
)


def _probe(paths: list[str]) -> list[str]:
    """Load each model in a child process: a crash fails the test instead of killing pytest."""
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *paths], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_damaged_files_never_crash_the_process(tmp_path) -> None:
    # Fault injection: bytes flipped (the intact file's digest beside it), and truncation at
    # every 97th length (with a matching digest: the structure check alone must catch it).
    good = MODEL_PATH.read_bytes()
    rng = np.random.default_rng(7)
    paths = []
    for k in range(15):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), 4):
            bad[i] ^= 0xFF
        sub = tmp_path / f"flip{k}"
        sub.mkdir()
        paths.append(str(_copy_with_digest(sub, bytes(bad))))
    for n in range(0, len(good), 97):
        sub = tmp_path / f"cut{n}"
        sub.mkdir()
        paths.append(str(_with_own_digest(sub, good[:n])))
    codes = _probe(paths)
    assert len(codes) == len(paths)
    assert set(codes) == {"E221"}


def test_a_model_of_another_shape_is_e222() -> None:
    with pytest.raises(BedsideError) as exc:
        QualityModel(n_features=len(FEATURE_NAMES) + 1)
    assert exc.value.code == "E222"
    with pytest.raises(BedsideError) as exc:
        QualityModel(n_classes=3)
    assert exc.value.code == "E222"


def _hide(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_no_runtime_is_e223(monkeypatch) -> None:
    _hide(monkeypatch, "tflite_runtime", "tflite_runtime.interpreter")
    _hide(monkeypatch, "ai_edge_litert", "ai_edge_litert.interpreter")
    with pytest.raises(BedsideError) as exc:
        QualityGate(250.0)
    assert exc.value.code == "E223"


def test_falls_back_to_ai_edge_litert(monkeypatch) -> None:
    # Without tflite_runtime, the Interpreter comes from ai_edge_litert.interpreter.
    real = model_mod.load_interpreter_class()
    fake = types.ModuleType("ai_edge_litert.interpreter")
    fake.Interpreter = type("LiteRtInterpreter", (real,), {})
    _hide(monkeypatch, "tflite_runtime", "tflite_runtime.interpreter")
    monkeypatch.setitem(sys.modules, "ai_edge_litert", types.ModuleType("ai_edge_litert"))
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", fake)
    assert model_mod.load_interpreter_class() is fake.Interpreter
    m = QualityModel()
    assert type(m._interp).__name__ == "LiteRtInterpreter"
