"""Where the test fixtures live (imported by tests; conftest.py modules can't be imported by name
because tests/ and tests/micro/ each have one)."""
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
TFLITE_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.tflite"))
