"""The README's API tour runs as written."""

import pathlib
import re

import pytest

pytestmark = pytest.mark.standard_promotion


def test_readme_python_blocks_run():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python block"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
