"""The one registry of supported operators: rules fill it; the frontend, legalizer and docs read it."""
import inspect
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import tvm_fused
from tvm_fused.errors import UnsupportedModelError
from tvm_fused.frontend import ops
from tvm_fused.passes import legalize

DOCS = Path(__file__).resolve().parent.parent / "docs" / "operators.md"


def test_docs_operators_md_is_current():
    assert DOCS.read_text() == ops.markdown(), \
        "docs/operators.md is stale: python -m tvm_fused.frontend.ops --markdown > docs/operators.md"


def test_every_source_op_is_lowered_by_a_registered_rule_or_the_core():
    providers = {f"{r.module}.{r.name}" for r in legalize.rules()} | {"tvm_fused.passes.legalize.core.Legalizer"}
    providers |= {"tvm_fused.frontend.tflite_converter.TvmFusedTfliteConverter"}  # shape ops folded at import
    for framework in ops.FRAMEWORKS:
        table = ops.supported(framework)
        assert table, framework
        for name, op in table.items():
            assert op.providers and set(op.providers) <= providers, (framework, name, op.providers)


def test_rules_are_found_by_relax_op_and_declare_their_source_ops():
    conv = legalize.get_rule("relax.nn.conv2d")
    assert conv.bias and "CONV_2D" in conv.tflite and "Conv" in conv.onnx
    assert "relax.nn.conv2d" in ops.relax_ops()
    assert legalize.get_rule("relax.astype", "int8") is not None


def _literal_block(lines, header):
    """The non-blank lines of the ``header`` literal block (indented deeper than the header)."""
    for i, line in enumerate(lines):
        if line.strip() == header:
            indent = len(line) - len(line.lstrip())
            block = []
            for body in lines[i + 1:]:
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                if body.strip():
                    block.append(body.strip())
            return block
    return []


def test_every_rule_docstring_has_its_formula_and_a_before_after_example():
    """Issue 11: each rule documents the exact integer formula and a ``Before::`` / ``After::`` example."""
    missing = []
    for rule in {r.lower: r for r in legalize.rules()}.values():
        doc = inspect.getdoc(rule.lower) or ""
        lines = doc.splitlines()
        head = doc.split("Before::")[0]
        before, after = _literal_block(lines, "Before::"), _literal_block(lines, "After::")
        problems = [what for what, ok in (
            ("formula (a line with ' = ' before Before::)", any(" = " in line for line in head.splitlines())),
            ("Before:: block with the imported Relax", any("R." in line for line in before)),
            ("After:: block with what the rule emits", any("=" in line for line in after)),
            ("Before:: before After::", "Before::" in doc and doc.index("Before::") < doc.find("After::")),
        ) if not ok]
        if problems:
            missing.append(f"{rule.module}.{rule.name}: {', '.join(problems)}")
    assert not missing, "rule docstrings incomplete:\n" + "\n".join(missing)


def test_a_second_rule_for_the_same_op_is_refused():
    with pytest.raises(ValueError, match="already has the rule"):
        legalize.register_rule("relax.nn.conv2d")(lambda ctx, m: None)


def _onnx_with_unsupported_ops() -> onnx.ModelProto:
    """x -> Q -> DQ -> Hardmax -> LpNormalization -> Hardmax -> Q: two unsupported types, one twice."""
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zp = helper.make_tensor("z", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q0"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"], name="dq0"),
        helper.make_node("Hardmax", ["xf"], ["h1"], name="first_hardmax", axis=1),
        helper.make_node("LpNormalization", ["h1"], ["n1"], name="norm", axis=1),
        helper.make_node("Hardmax", ["n1"], ["h2"], name="second_hardmax", axis=1),
        helper.make_node("QuantizeLinear", ["h2", "s", "z"], ["y"], name="q1"),
    ]
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 8])], [scale, zp])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_unsupported_model_gets_one_error_naming_every_op_with_count_and_first_node():
    with pytest.raises(UnsupportedModelError) as err:
        tvm_fused.compile(_onnx_with_unsupported_ops(), progress=False, codegen=False)
    text = str(err.value)
    assert "2 ONNX operators" in text
    assert "Hardmax (2 nodes, first 'first_hardmax')" in text
    assert "LpNormalization (1 node, first 'norm')" in text
    assert "docs/operators.md" in text


def test_tflite_check_reads_the_same_registry():
    nodes = [("CONV_2D", "a"), ("SOFTMAX_X", "b"), ("SOFTMAX_X", "c"), ("ADD", "d")]
    with pytest.raises(UnsupportedModelError, match=r"SOFTMAX_X \(2 nodes, first 'b'\)"):
        ops.check_model_ops("tflite", nodes)
    ops.check_model_ops("tflite", [(n, n) for n in ops.supported("tflite")])  # all supported: no error

