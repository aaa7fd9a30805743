"""The forked layer of the own-model guide (docs/guides/own-model.md, "Fork a jaxvision
layer"), loaded from the guide itself so the tests run exactly what the guide shows."""

import re
import types
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "own-model.md"


def fork_source() -> str:
    """The guide's ``# sepbn.py`` code block."""
    return re.search(r"```python\n(# sepbn\.py\n.*?)```", GUIDE.read_text(), flags=re.S).group(1)


def fork_module() -> types.ModuleType:
    module = types.ModuleType("sepbn")
    exec(compile(fork_source(), str(GUIDE), "exec"), module.__dict__)
    return module
