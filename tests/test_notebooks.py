"""Every notebook in colab/ runs top to bottom at quick size (JREG_QUICK=1), on CPU."""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "colab").glob("*.ipynb"))


def test_there_are_three_notebooks():
    assert {p.stem for p in NOTEBOOKS} == {"quickstart", "reproduce", "applications"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JREG_QUICK", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    nb = nbformat.read(path, as_version=4)
    assert "YOUR-ORG" not in path.read_text()
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert os.listdir(tmp_path) or path.stem == "quickstart"


def test_notebooks_install_from_the_projects_repository_url():
    """One install source: [project.urls] Repository in pyproject.toml."""
    import re

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = pathlib.Path(__file__).parents[1]
    url = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert re.findall(r'JREG_SOURCE = "([^"]+)"', code) == [f"git+{url}.git"], path.stem
        assert "runtime.setup()" in code and '"-c", f.name' in code, path.stem
