"""benchmarks/memory_floor.py: the graph's lower bounds hold against the planner's own plans."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_memory_floor_bounds_hold_for_our_plans(tmp_path):
    out = tmp_path / "floor.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_floor.py"), "--models", "mbv2-0.35-96",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    t = row["row_stream_floor_terms"]
    # 96x96x3 input, stem 3x3 stride 2 pad 1 -> 48x48x16, then a 3x3 depthwise (pad 1): two stem
    # rows before its first row, the second of which reads input rows 1..3
    assert (t["input_rows_live"], t["input_row_bytes"], t["first_conv_rows"], t["first_conv_row_bytes"]) == \
        (95, 288, 2, 768)
    assert row["row_stream_floor_bytes"] == 95 * 288 + 2 * 768
    # bounds, so no plan of ours may be below them
    assert row["row_stream_floor_bytes"] <= row["fused_arena_bytes"] < row["unfused_arena_bytes"]
    assert row["largest_tensor_bytes"] <= row["unfused_arena_bytes_without_input"]
    assert "| mbv2-0.35-96 |" in res.stdout
