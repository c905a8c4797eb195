"""What every notebook of the book starts with: its mode, its device, its seeds, its images.

A notebook runs in *quick* mode by default (a few minutes on two CPU cores) and in *full* mode,
for a GPU, when ``SRLIB_FULL=1`` is set in the environment (or ``full=True`` is passed): the
papers' networks and recipes, sized so that all four notebooks take about 10 minutes on one
H100/H200-class GPU (:data:`FULL_BUDGET_S`; longer on a Colab T4, :func:`t4_upper_s` gives an upper
estimate). ``SRLIB_FULL=dry`` runs full mode's code at quick mode's sizes, on a CPU
(``scripts/gpu_check.py --dry-run``, tested in CI): a full-mode branch that fails is found there,
not after minutes on a GPU.
Chapters: every notebook (``notebooks/*.ipynb``) and every chapter that runs code; the preface
(book/preface.md) explains the two modes.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import load_images, or_builtin
from .device import cpu_info, describe_cpu, pick_device

QUICK_BUDGET_S = 180  # what a notebook's quick mode may take on 2 CPU cores in float32 (the book's rule)
# What each notebook's full mode is sized to take on one H100/H200-class GPU, seconds (all four: 10 minutes);
# scripts/gpu_check.py runs each under this limit and records what it took (the GPU appendix shows it).
FULL_BUDGET_S = {"01_sparse_coding": 180, "02_receptive_fields": 90, "03_residual_learning": 180,
                 "04_perceptual_loss": 150}
# Peak throughput in TFLOPS (dense, no sparsity) from NVIDIA's data sheets, for a rough Colab T4 estimate: an
# H100/H200 SXM (the two compute alike) and a T4, in float32 and in 16-bit on tensor cores (bf16; the T4 has fp16 only).
PEAK_TFLOPS = {"H100/H200": {"float32": 67.0, "16-bit": 989.0}, "T4": {"float32": 8.1, "16-bit": 65.0}}


def t4_upper_s(seconds: float) -> float:
    """Up to about how long ``seconds`` on one H100/H200-class GPU take on a T4 (Colab's GPU): scaled by the
    larger ratio of the two GPUs' published peak throughput (:data:`PEAK_TFLOPS`: 16-bit's; float32's is
    smaller). An upper estimate, not measured: a step too small to fill the larger GPU (most of the notebooks'
    small networks) loses less on the T4; only float64 loses more (the T4 computes it at 1/32 of its float32
    rate: notebook 01's pixel dictionaries)."""
    return seconds * max(PEAK_TFLOPS["H100/H200"][k] / PEAK_TFLOPS["T4"][k] for k in ("float32", "16-bit"))


def _sized(budget: float) -> str:
    return (f"sized for {budget:.0f} s on one H100/H200-class GPU, up to about {t4_upper_s(budget) / 60:.0f} min "
            "on a Colab T4")


@dataclass(frozen=True)
class Session:
    """The settings a notebook runs with."""

    full: bool  # full mode's code (True) or quick mode (False)
    device: torch.device
    test_set: str  # "Set5" when the benchmark images are at hand, else "builtin"
    seed: int
    started: float = field(default_factory=time.perf_counter)  # when setup() ran
    dry: bool = False  # a dry run: full mode's code at quick mode's sizes (SRLIB_FULL=dry)
    full_budget_s: float | None = None  # what its full mode is sized to take on one H100/H200-class GPU

    def size(self, full, quick):
        """``full`` in full mode, else ``quick``: in quick mode, and in a dry run, which runs full
        mode's code with quick mode's sizes (``SRLIB_FULL=dry``, to test it on a CPU)."""
        return full if self.full and not self.dry else quick

    def report(self) -> str:
        """The notebook's wall time since :func:`setup`, its mode and the machine it ran on (the
        last cell of every notebook prints it: the quick mode's budget is 3 minutes on 2 CPU cores)."""
        seconds = time.perf_counter() - self.started
        cpu = cpu_info()
        where = describe_cpu(cpu)
        if self.device.type == "cuda":
            where = f"{torch.cuda.get_device_name(self.device)}; CPU {where}"
        mode = "a dry run of full mode" if self.dry else "full mode" if self.full else "quick mode"
        text = f"This notebook ran in {seconds:.0f} s, {mode}, on {where}."
        if self.full and not self.dry and self.full_budget_s:
            text += (f" Full mode is sized for {self.full_budget_s:.0f} s on one H100/H200-class GPU: "
                     + ("within it." if seconds <= self.full_budget_s else "over it."))
            if self.device.type == "cuda" and "T4" in torch.cuda.get_device_name(self.device):
                upper = t4_upper_s(self.full_budget_s)
                text += (f" On a T4, up to about {upper / 60:.0f} min: "
                         + ("within that." if seconds <= upper else "over that."))
        if not self.full:
            text += (f" Quick mode's budget is {QUICK_BUDGET_S} s on 2 CPU cores in float32: "
                     + ("within it." if seconds <= QUICK_BUDGET_S and cpu["cores"] <= 2 else
                        "over it." if cpu["cores"] <= 2 else f"this machine has {cpu['cores']} cores."))
        return text

    def images(self, scale: float | None = None) -> list[tuple[str, np.ndarray]]:
        """The test images (uint8, cropped to a multiple of ``scale``)."""
        return load_images(self.test_set, scale)

    def train_set(self, name: str) -> str:
        """The training set ``name`` when it is at hand (on Colab, after a download), else
        ``"builtin"``, saying so: every notebook runs with no data and no network."""
        if or_builtin(name, "google.colab" in sys.modules) == name:
            return name
        print(f"training images: builtin ({name} not found: see the data sets appendix)")
        return "builtin"


def full_mode(full: bool | None = None) -> bool:
    """``full`` if given, else whether ``SRLIB_FULL`` is set to 1/true/yes (or to dry: :func:`dry_run`)."""
    if full is not None:
        return bool(full)
    return os.environ.get("SRLIB_FULL", "").strip().lower() in ("1", "true", "yes", "on", "dry")


def dry_run() -> bool:
    """Whether ``SRLIB_FULL=dry``: full mode's code at quick mode's sizes (:meth:`Session.size`)."""
    return os.environ.get("SRLIB_FULL", "").strip().lower() == "dry"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, so that a notebook prints the same numbers every run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(notebook: str | None = None, seed: int = 0, full: bool | None = None, device: str | None = None,
          verbose: bool = True) -> Session:
    """Seed everything, pick the mode, the device and the test images, and say which; ``notebook``
    (its file name without .ipynb) says how long its full mode is sized to take (:data:`FULL_BUDGET_S`)."""
    seed_everything(seed)
    on_colab = "google.colab" in sys.modules  # there, a missing Set5 is downloaded
    test_set = or_builtin("Set5", on_colab)
    budget = FULL_BUDGET_S.get(notebook) if notebook else None
    s = Session(full=full_mode(full), device=pick_device(device), test_set=test_set, seed=seed,
                dry=full is None and dry_run(), full_budget_s=budget)
    if verbose:
        sized = f", {_sized(budget)}" if budget else ""
        mode = ("full, dry run (full mode's code at quick mode's sizes)" if s.dry else
                f"full (the papers' networks and recipes, for a GPU{sized})" if s.full else
                f"quick (SRLIB_FULL=1 on a GPU runs the full mode{sized})")
        data = "Set5" if s.test_set == "Set5" else "builtin (Set5 not found: see the data sets appendix)"
        print(f"mode: {mode}\ndevice: {s.device}\ntest images: {data}")
    return s


# ----- controls that work in the rendered book ------------------------------------------------------------
# The book is static HTML: no kernel runs a widget's Python callback there. So a control shows
# results computed when the notebook ran, switched in the browser: `switch` links the control
# to a Stack of the precomputed views (ipywidgets' jslink), which the saved widget state keeps.


def switch(control, views: list):
    """A Stack of ``views`` (widgets, one per option of ``control``, a selection widget such as
    a Dropdown or a SelectionSlider) that shows the one ``control`` selects, in the live
    notebook and in the rendered book alike (the two are linked in the browser, not by Python)."""
    import ipywidgets as widgets

    if len(views) != len(control.options):
        raise ValueError(f"switch: {len(control.options)} options but {len(views)} views")
    stack = widgets.Stack(views, selected_index=control.index)
    widgets.jslink((control, "index"), (stack, "selected_index"))
    return stack


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (for an Image widget); the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def compare(images: dict[str, np.ndarray], left: str, right: str, zoom: int = 1):
    """A before/after comparison of uint8 images of one size: two menus pick the images, and a
    slider moves the border between them (left image left of the white line). Plain HTML with
    its own few lines of script, so it works in the rendered book without a kernel."""
    import base64
    import html
    import io

    from IPython.display import HTML
    from PIL import Image

    urls = {}
    for name, im in images.items():
        buf = io.BytesIO()
        Image.fromarray(np.repeat(np.repeat(np.asarray(im), zoom, 0), zoom, 1)).save(buf, format="png")
        urls[name] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    def menu(side: str, chosen: str) -> str:
        options = "".join(f'<option value="{urls[n]}"{" selected" if n == chosen else ""}>{html.escape(n)}</option>'
                          for n in images)
        return (f'{side} <select class="srlib-compare-{side}" onchange="this.closest(\'.srlib-compare\')'
                f'.querySelector(\'img.{side}\').src = this.value">{options}</select>')

    move = ("const box = this.parentNode; box.querySelector('img.right').style.clipPath = "
            "'inset(0 0 0 ' + this.value + '%)'; box.querySelector('.line').style.left = this.value + '%'")
    return HTML(
        '<div class="srlib-compare" style="display:inline-block">'
        f'<div style="margin-bottom:4px">{menu("left", left)} &nbsp; {menu("right", right)}</div>'
        '<div style="position:relative;line-height:0;display:inline-block">'
        f'<img class="left" src="{urls[left]}" style="max-width:100%">'
        f'<img class="right" src="{urls[right]}" style="position:absolute;left:0;top:0;max-width:100%;'
        'clip-path:inset(0 0 0 50%)">'
        '<div class="line" style="position:absolute;top:0;bottom:0;left:50%;width:2px;background:#fff;'
        'box-shadow:0 0 3px #000;pointer-events:none"></div>'
        '<input type="range" min="0" max="100" value="50" aria-label="border between the two images" '
        'style="position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0;cursor:ew-resize" '
        f'oninput="{move}"></div></div>')


# ----- verdicts computed from the numbers ----------------------------------------------------------------
# A chapter that reproduces a paper ends with a table: the claim, what the paper reports, what we
# measured, and a verdict. The verdict is never typed: it follows from the checks on our numbers.


@dataclass
class Claim:
    """One claim of a paper checked against our numbers.

    ``checks`` are the comparisons the claim makes, evaluated on our numbers (``True`` where
    ours show it); ``why_not`` is the reason when some do not (said in the table).
    """

    claim: str  # the paper's claim, in words
    where: str  # where the paper makes it (section, table, figure)
    paper: str  # the published figures, labelled as such
    ours: str  # what we measured, formatted from our numbers
    checks: tuple[bool, ...]
    why_not: str = ""

    @property
    def verdict(self) -> str:
        """``reproduced`` (every check holds), ``partly`` (some do) or ``not reproduced here``."""
        held = [bool(c) for c in self.checks]
        if not held:
            raise ValueError(f"claim {self.claim!r} has no checks")
        return "reproduced" if all(held) else "partly" if any(held) else "not reproduced here"


def verdict_table(claims: list[Claim]) -> str:
    """The claims as a Markdown table, with their computed verdicts and, where not every check
    holds, the reason."""

    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    rows = ["| claim | paper | ours | verdict |", "|---|---|---|---|"]
    for c in claims:
        verdict = f"**{c.verdict}**" + (f": {c.why_not}" if c.verdict != "reproduced" and c.why_not else "")
        rows.append(f"| {cell(c.claim)} ({cell(c.where)}) | {cell(c.paper)} | {cell(c.ours)} | {cell(verdict)} |")
    return "\n".join(rows)
