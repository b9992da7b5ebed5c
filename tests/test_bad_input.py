"""Bad input, the hostile-but-fair new user's way (issue 12): every case ends with exit status 2,
no traceback, a message naming the cause, and the user's files byte-identical.

The CLI runs in-process (tvm_fused.cli.main), so these cases cost no interpreter start-up;
the device-side cases (run, project folders, faults, temp cleanup) are in tests/micro/test_faults.py."""
import errno
import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import tvm_fused
from tvm_fused import validate
from tvm_fused.cli import main
from tvm_fused.errors import InvalidInputError, ModelLoadError, OutputPathError, UsageError

sys.path.insert(0, str(Path(__file__).parent / "micro"))
from tiny_onnx import tiny_qdq_conv  # noqa: E402

TINY_ZOO = "mbv2-0.35-96-tiny"


def snapshot(root: Path) -> dict:
    """{relative path: sha256} of every file under root (what 'byte-identical afterwards' compares)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def user_folder(root: Path) -> Path:
    """A folder holding a user's own work, the kind tvm-fused must never overwrite."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Makefile").write_text("all:\n\techo my own build\n")
    (root / "README.md").write_text("# my notes\n")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "model").mkdir(exist_ok=True)
    (root / "model" / "weights.bin").write_bytes(bytes(range(256)))
    return root


def cli(capsys, *argv):
    """(exit status, stdout, stderr) of `tvm-fused argv...`, in-process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_user_error(status, err, *words):
    assert status == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.strip().splitlines()) <= 2, err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return tiny_qdq_conv(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def tiny_model(tiny_onnx):
    return tvm_fused.compile(str(tiny_onnx), progress=False)


# ---- model paths ----------------------------------------------------------------------------------------------------

class TestModelPaths:
    def test_missing_file(self, capsys, tmp_path):
        status, _, err = cli(capsys, "compile", tmp_path / "nope.onnx", "-o", tmp_path / "out")
        assert_user_error(status, err, "nope.onnx", "no such file")
        assert not (tmp_path / "out").exists()

    def test_folder_instead_of_file(self, capsys, tmp_path):
        (tmp_path / "m.onnx").mkdir()
        status, _, err = cli(capsys, "compile", tmp_path / "m.onnx", "-o", tmp_path / "out")
        assert_user_error(status, err, "m.onnx", "is a folder")

    def test_empty_onnx_names_the_file(self, capsys, tmp_path):
        (tmp_path / "empty.onnx").write_bytes(b"")
        status, _, err = cli(capsys, "compile", tmp_path / "empty.onnx", "-o", tmp_path / "out")
        assert_user_error(status, err, "empty.onnx", "0 bytes")

    def test_empty_model_path(self, capsys, tmp_path):
        status, _, err = cli(capsys, "compile", "", "-o", tmp_path / "out")
        assert_user_error(status, err, "model path is empty")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
    def test_unreadable_file(self, capsys, tmp_path, tiny_onnx):
        p = tmp_path / "locked.onnx"
        p.write_bytes(tiny_onnx.read_bytes())
        p.chmod(0)
        status, _, err = cli(capsys, "compile", p, "-o", tmp_path / "out")
        assert_user_error(status, err, "locked.onnx", "permission denied")

    def test_truncated_onnx(self, capsys, tmp_path, tiny_onnx):
        p = tmp_path / "cut.onnx"
        p.write_bytes(tiny_onnx.read_bytes()[:100])
        status, _, err = cli(capsys, "compile", p, "-o", tmp_path / "out")
        assert_user_error(status, err, "cut.onnx")

    def test_garbage_tflite(self, capsys, tmp_path):
        p = tmp_path / "junk.tflite"
        p.write_bytes(b"\x00" * 64)
        status, _, err = cli(capsys, "compile", p, "-o", tmp_path / "out")
        assert_user_error(status, err, "junk.tflite", "not a TFLite flatbuffer")

    def test_api_checks_the_path_too(self, tmp_path):
        (tmp_path / "empty.tflite").write_bytes(b"")
        with pytest.raises(ModelLoadError, match="empty.tflite is empty"):
            tvm_fused.compile(str(tmp_path / "empty.tflite"), progress=False)


# ---- numbers ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag,value,words", [
    ("--fuse", "-1", ["--fuse", "-1"]),
    ("--fuse", "some", ["--fuse", "'some'"]),
    ("--ram-budget", "inf", ["--ram-budget", "finite"]),
    ("--ram-budget", "-5", ["--ram-budget", "positive"]),
    ("--ram-budget", "0", ["--ram-budget", "positive"]),
    ("--ram-budget", "lots", ["--ram-budget", "'lots'"]),
    ("--ram-budget", "nanK", ["--ram-budget", "finite"]),
    ("--latency-budget", "nan", ["--latency-budget", ">= 1.0"]),
    ("--latency-budget", "0.5", ["--latency-budget", ">= 1.0"]),
])
def test_bad_numbers_are_refused_before_work(capsys, tmp_path, flag, value, words):
    # a model path that does not exist: the option must be refused first (no work, no file check)
    status, _, err = cli(capsys, "compile", tmp_path / "never-read.onnx", "-o", tmp_path / "out", flag, value)
    assert_user_error(status, err, *words)
    assert "never-read" not in err


@pytest.mark.parametrize("value", ["0", "-3", "x", "1.5"])
def test_bad_repeat(capsys, tmp_path, value):
    status, _, err = cli(capsys, "run", tmp_path / "never-read.onnx", "--repeat", value)
    assert_user_error(status, err, "--repeat")


@pytest.mark.parametrize("kwargs,words", [
    ({"fuse": -1}, "fuse=-1"),
    ({"fuse": True}, "fuse=True"),
    ({"fuse": "3 blocks"}, "fuse='3 blocks'"),
    ({"ram_budget": math.inf}, "finite"),
    ({"ram_budget": -1}, "positive"),
    ({"ram_budget": "garbage"}, "garbage"),
    ({"latency_budget": math.nan}, "latency_budget"),
    ({"fuse_objective": "speed"}, "fuse_objective"),
    ({"board": "arduino"}, "unknown board"),
])
def test_api_refuses_bad_options_before_reading_the_model(kwargs, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace("?", r"\?")):
        tvm_fused.compile("/nonexistent/model.onnx", progress=False, **kwargs)


def test_over_budget_after_fuse_auto_does_not_say_try_fuse_auto(capsys, tmp_path):
    status, _, err = cli(capsys, "compile", TINY_ZOO, "-o", tmp_path / "out", "--fuse", "auto", "--ram-budget", "1K",
                         "-q")
    assert_user_error(status, err, "RAM budget is 1024 bytes", "after --fuse auto")
    assert "try --fuse auto" not in err
    status, _, err = cli(capsys, "compile", TINY_ZOO, "-o", tmp_path / "out", "--ram-budget", "1K", "-q")
    assert_user_error(status, err, "Try --fuse auto")
    assert not (tmp_path / "out").exists()


def test_fuse_more_blocks_than_the_model_has(capsys, tmp_path, tiny_onnx):
    status, _, err = cli(capsys, "compile", tiny_onnx, "-o", tmp_path / "out", "--fuse", "7", "-q")
    assert_user_error(status, err, "--fuse 7", "fusable blocks")


# ---- output paths -----------------------------------------------------------------------------------------------------

class TestOutputPaths:
    def test_compile_refuses_a_users_folder(self, capsys, tmp_path, tiny_onnx):
        mine = user_folder(tmp_path / "mine")
        before = snapshot(mine)
        status, _, err = cli(capsys, "compile", tiny_onnx, "-o", mine, "-q")
        assert_user_error(status, err, str(mine), "not empty", "--force")
        assert snapshot(mine) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary sibling left

    def test_compile_to_an_existing_file(self, capsys, tmp_path, tiny_onnx):
        f = tmp_path / "out"
        f.write_text("keep me")
        status, _, err = cli(capsys, "compile", tiny_onnx, "-o", f, "-q")
        assert_user_error(status, err, "is an existing file")
        assert f.read_text() == "keep me"

    def test_compile_empty_output_path(self, capsys, tiny_onnx):
        status, _, err = cli(capsys, "compile", tiny_onnx, "-o", "", "-q")
        assert_user_error(status, err, "path is empty")

    def test_compile_replaces_its_own_export_and_force_a_users(self, capsys, tmp_path, tiny_onnx):
        out = tmp_path / "out"
        assert cli(capsys, "compile", tiny_onnx, "-o", out, "-q")[0] == 0
        (out / "model" / "src" / "stale.c").write_text("/* from an older compile */\n")
        assert cli(capsys, "compile", tiny_onnx, "-o", out, "-q")[0] == 0  # ours (marker): replaced whole
        assert not (out / "model" / "src" / "stale.c").exists() and (out / "report.json").is_file()
        mine = user_folder(tmp_path / "mine")
        before = snapshot(mine)
        assert cli(capsys, "compile", tiny_onnx, "-o", mine, "-q", "--force")[0] == 0
        after = snapshot(mine)
        assert (mine / "report.json").is_file() and (mine / "model" / "include" / "tvmgen_default.h").is_file()
        # --force replaces only what has our names (model/ here); the user's other files stay as they were
        assert {k: v for k, v in before.items() if not k.startswith("model/")} == \
            {k: v for k, v in after.items() if k in before and not k.startswith("model/")}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]

    def test_plan_json_into_a_folder(self, capsys, tmp_path):
        status, _, err = cli(capsys, "plan", TINY_ZOO, "--json", tmp_path, "-q")
        assert_user_error(status, err, "--json", "is a folder")

    @pytest.mark.parametrize("name", ["mem", "mem.xyz"])
    def test_plot_needs_a_picture_suffix(self, capsys, tmp_path, name):
        # matplotlib would write mem.png for "mem" and fail for ".xyz" after the whole compile
        status, _, err = cli(capsys, "plan", tmp_path / "never-read.onnx", "--plot", tmp_path / name)
        assert_user_error(status, err, "--plot", ".png")
        assert list(tmp_path.iterdir()) == []

    def test_run_output_must_be_npy(self, capsys, tmp_path):
        # np.save would write y.json.npy and we would claim y.json: refused before any work
        status, _, err = cli(capsys, "run", TINY_ZOO, "--output", tmp_path / "y.json")
        assert_user_error(status, err, "y.json", ".npy")

    def test_run_project_dir_of_a_user_is_refused_before_work(self, capsys, tmp_path):
        mine = user_folder(tmp_path / "mine")
        before = snapshot(mine)
        status, _, err = cli(capsys, "run", tmp_path / "never-read.onnx", "--project-dir", mine)
        assert_user_error(status, err, str(mine), "not empty", "--force")
        assert snapshot(mine) == before

    def test_run_on_a_real_board_needs_an_existing_port(self, capsys):
        status, _, err = cli(capsys, "run", TINY_ZOO, "--board", "nucleo-f767zi")
        assert_user_error(status, err, "--port /dev/ttyACM0")
        status, _, err = cli(capsys, "run", TINY_ZOO, "--board", "nucleo-f767zi", "--port", "/dev/ttyACM77")
        assert_user_error(status, err, "/dev/ttyACM77", "no such device")

    def test_run_empty_project_dir(self, capsys):
        status, _, err = cli(capsys, "run", TINY_ZOO, "--project-dir", "")
        assert_user_error(status, err, "path is empty")

    def test_full_disk_leaves_old_output_or_nothing(self, capsys, tmp_path, tiny_onnx, monkeypatch):
        out = tmp_path / "out"
        assert cli(capsys, "compile", tiny_onnx, "-o", out, "-q")[0] == 0
        before = snapshot(out)
        real_write = Path.write_text

        def full_disk(self, text, *a, **k):
            if self.name == "report.json":
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real_write(self, text, *a, **k)

        monkeypatch.setattr(Path, "write_text", full_disk)
        status, _, err = cli(capsys, "compile", tiny_onnx, "-o", out, "-q", "--fuse", "auto")
        assert_user_error(status, err, "no space left")
        assert snapshot(out) == before  # the old export, whole
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
        status, _, err = cli(capsys, "compile", tiny_onnx, "-o", tmp_path / "new", "-q")
        assert_user_error(status, err, "no space left")
        assert not (tmp_path / "new").exists()


# ---- tools -------------------------------------------------------------------------------------------------------------

def _path_with(tmp_path, *programs) -> str:
    """A PATH holding only the named programs (symlinks to the real ones)."""
    import shutil

    d = tmp_path / "bin"
    d.mkdir()
    for prog in programs:
        real = shutil.which(prog)
        if real is None:
            pytest.skip(f"{prog} not installed")
        (d / prog).symlink_to(real)
    return str(d)


@pytest.mark.parametrize("present,missing", [(("make",), "arm-none-eabi-gcc"),
                                             (("make", "arm-none-eabi-gcc"), "qemu-system-arm")])
def test_missing_tool_is_named_before_compiling(capsys, tmp_path, monkeypatch, present, missing):
    monkeypatch.setenv("PATH", _path_with(tmp_path, *present))

    def no_compile(*a, **k):
        raise AssertionError("compiled before checking the tools")

    monkeypatch.setattr(tvm_fused, "compile", no_compile)
    status, _, err = cli(capsys, "run", TINY_ZOO)
    assert_user_error(status, err, missing, "apt-get install")


# ---- input arrays ------------------------------------------------------------------------------------------------------

class TestInputArrays:
    def test_int8_exact_shape_is_used_as_is(self, tiny_model):
        x = tiny_model.random_input(3)
        assert validate.input_array(x, tiny_model.io["inputs"][0]) is x

    def test_float_is_quantized_with_the_models_scale(self, tiny_model):
        spec = tiny_model.io["inputs"][0]
        x = np.linspace(-3, 3, int(np.prod(spec["shape"])), dtype=np.float32).reshape(spec["shape"])
        q = validate.input_array(x, spec)
        assert q.dtype == np.int8
        real = (x / np.float32(spec["scale"])).astype(np.float64)  # TFLite divides in float32
        expect = np.clip(np.sign(real) * np.floor(np.abs(real) + 0.5) + spec["zero_point"], -128, 127)
        np.testing.assert_array_equal(q, expect.astype(np.int8))
        np.testing.assert_array_equal(tiny_model.reference(x), tiny_model.reference(q))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_nan_and_inf_are_refused(self, tiny_model, bad):
        spec = tiny_model.io["inputs"][0]
        x = np.zeros(spec["shape"], np.float32)
        x[0, 1, 2, 0] = bad
        with pytest.raises(InvalidInputError, match=r"NaN or infinite \(first at index \(0, 1, 2, 0\)\)"):
            tiny_model.reference(x)

    def test_nchw_is_not_reinterpreted(self, tiny_model):
        n, h, w, c = tiny_model.io["inputs"][0]["shape"]
        with pytest.raises(InvalidInputError, match=r"looks like NCHW.*transpose\(0, 2, 3, 1\)"):
            tiny_model.reference(np.zeros((n, c, h, w), np.int8))

    def test_same_size_other_shape_is_not_reinterpreted(self, tiny_model):
        shape = tiny_model.io["inputs"][0]["shape"]
        with pytest.raises(InvalidInputError, match="does not guess a layout"):
            tiny_model.reference(np.zeros(int(np.prod(shape)), np.int8))

    @pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.bool_])
    def test_other_dtypes_are_refused(self, tiny_model, dtype):
        with pytest.raises(InvalidInputError, match=f"dtype {np.dtype(dtype)}"):
            tiny_model.reference(np.zeros(tiny_model.io["inputs"][0]["shape"], dtype))

    def test_cli_input_file_checks(self, capsys, tmp_path):
        np.save(tmp_path / "u8.npy", np.zeros((1, 96, 96, 3), np.uint8))
        (tmp_path / "junk.npy").write_bytes(b"not numpy")
        for name, words in (("u8.npy", ["u8.npy", "dtype uint8"]), ("junk.npy", ["junk.npy", "numpy.save"]),
                            ("missing.npy", ["missing.npy", "no such file"])):
            status, _, err = cli(capsys, "run", TINY_ZOO, "--input", tmp_path / name)
            if "arm-none-eabi-gcc" in err or "qemu-system-arm" in err:
                pytest.skip("toolchain missing: checked before the input")
            assert_user_error(status, err, *words)


def test_errors_are_one_hierarchy():
    import tvm_fused.micro as micro
    from tvm_fused import errors

    assert micro.ModelDoesNotFitError is errors.ModelDoesNotFitError is tvm_fused.ModelDoesNotFitError
    assert issubclass(OutputPathError, UsageError) and issubclass(UsageError, ValueError)
    for name in ("BuildError", "DeviceError", "RpcError", "DeviceTimeoutError"):
        assert getattr(micro, name) is getattr(errors, name)


def test_debug_shows_the_traceback(capsys, tmp_path, monkeypatch):
    status, _, err = cli(capsys, "compile", tmp_path / "nope.onnx", "-o", tmp_path / "o", "--debug")
    assert status == 2 and "Traceback" in err and "no such file" in err
    monkeypatch.setenv("TVM_FUSED_DEBUG", "1")
    status, _, err = cli(capsys, "compile", tmp_path / "nope.onnx", "-o", tmp_path / "o")
    assert status == 2 and "Traceback" in err


def test_a_bug_is_one_line_with_a_pointer_to_debug(capsys, tmp_path, monkeypatch, tiny_onnx):
    def bug(*a, **k):
        raise IndexError("list index out of range")

    monkeypatch.setattr(tvm_fused, "compile", bug)
    status, _, err = cli(capsys, "compile", tiny_onnx, "-o", tmp_path / "o")
    assert status == 1 and "Traceback" not in err
    assert "internal error: IndexError" in err and "--debug" in err


def test_an_error_raised_inside_a_tvm_pass_is_still_a_user_error(capsys, tmp_path, tiny_onnx):
    """TVM's FFI turns our exception inside a pass into a RuntimeError; the CLI still reports it as ours."""
    import onnx
    from onnx import helper

    m = onnx.load(str(tiny_onnx))
    m.graph.node[0].input[0] = "x_relu"  # a float op before the first QuantizeLinear
    m.graph.node.insert(0, helper.make_node("Relu", ["x"], ["x_relu"]))
    onnx.save(m, str(tmp_path / "float_first.onnx"))
    status, _, err = cli(capsys, "compile", tmp_path / "float_first.onnx", "-o", tmp_path / "out", "-q")
    assert_user_error(status, err, "'x' is not quantized to int8")
