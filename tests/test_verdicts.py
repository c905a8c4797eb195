"""Verdicts are computed, never typed: srlib.notebook.Claim and the chapters that use it."""

import json
import re

import pytest
from conftest import ROOT

from srlib.notebook import Claim, verdict_table

VERDICT = re.compile(r"\b(reproduced|not reproduced here|partly)\b", re.I)


def test_the_verdict_follows_the_checks():
    assert Claim("a", "s", "1", "2", (True, True)).verdict == "reproduced"
    assert Claim("a", "s", "1", "2", (True, False)).verdict == "partly"
    assert Claim("a", "s", "1", "2", (False,)).verdict == "not reproduced here"
    with pytest.raises(ValueError, match="no checks"):
        _ = Claim("a", "s", "1", "2", ()).verdict
    table = verdict_table([Claim("more | data", "4.1", "32.52", "31.84", (False,), "the reason"),
                           Claim("b", "4.2", "x", "y", (True,), "not shown")]).splitlines()
    assert table[2] == "| more \\| data (4.1) | 32.52 | 31.84 | **not reproduced here**: the reason |"
    assert table[3] == "| b (4.2) | x | y | **reproduced** |"  # no reason when every check holds


@pytest.mark.parametrize(("notebook", "chapter", "count"), [("01_sparse_coding", "srcnn", 8),
                                                          ("02_receptive_fields", "vdsr", 4),
                                                          ("03_residual_learning", "vdsr", 7),
                                                          ("04_perceptual_loss", "srgan", 6)])
def test_the_chapters_type_no_verdict(notebook, chapter, count):
    """Each notebook with a claims table computes it; neither its Markdown nor its book chapter states one."""
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "verdict_table(claims)" in code and code.count("Claim(") >= count
    typed = [line for c in nb["cells"] if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
             if line.lstrip().startswith("|") and VERDICT.search(line)]
    prose = re.sub(r"```\{code-cell\}.*?\n```", "", (ROOT / "book" / f"{chapter}.md").read_text(), flags=re.S)
    typed += [line for line in prose.splitlines() if line.lstrip().startswith("|") and VERDICT.search(line)]
    typed += re.findall(r"\*\*(?:reproduced|partly|not reproduced here)\*\*", prose)
    assert not typed, f"typed verdicts: {typed}"
    # the computed table is in the saved run, one row per claim
    shown = [o for c in nb["cells"] for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})
             and "| claim | paper | ours | verdict |" in "".join(o["data"]["text/markdown"])]
    assert len(shown) == 1 and "".join(shown[0]["data"]["text/markdown"]).count("\n| ") >= count
