"""Fuzzing model files with a fixed CI budget (the long run: python benchmarks/fuzz_models.py):
truncated, bit-flipped and structurally mutated TFLite fixtures and a tiny ONNX model must each end
in a clean TvmFusedError or a correct compile, never a crash, a hang or another exception."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CI_CASES = 150  # ~20 s on one core; every mutation kind on every seed model several times
CI_SECONDS = 50  # hard cap, so a slow machine shortens the run instead of timing out


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_models", ROOT / "benchmarks" / "fuzz_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_damaged_models_end_in_a_clean_error_or_a_compile():
    fuzz = _fuzz_module()
    result = fuzz.fuzz(CI_CASES, CI_SECONDS, seed=0, case_timeout=30, progress=None)
    assert result["cases"] >= 40, result  # the budget ran real cases, not just the start-up
    assert result["failures"] == [], "\n".join(
        f"case {f['case']} ({f['seed_model']}, {f['mutation']}): {f['outcome']} {f.get('type', '')} {f['message']}"
        for f in result["failures"])
    s = result["summary"]
    assert s["clean_error"] > 0 and s["compiled"] > 0, s  # both ends are reached: the mutations are not all fatal
    assert set(result["by_mutation"]) >= {"truncate", "bitflip", "bytes", "words", "proto"}


def test_the_mutations_are_deterministic(tmp_path):
    fuzz = _fuzz_module()
    seeds = fuzz.seed_models(tmp_path)
    first = [case for case, _ in zip(fuzz.cases(seeds, 7), range(30))]
    again = [case for case, _ in zip(fuzz.cases(seeds, 7), range(30))]
    assert first == again
    assert any(data != seeds[n] for _, n, _, data in first)
