"""Sphinx extension: a cell's printed text reads in the book exactly as the cell printed it.

The kernel sends what a cell prints in chunks cut by a timer, anywhere: between two lines,
or between a line and its newline (``print`` writes them apart). With ``nb_merge_streams``,
myst-nb (1.x, ``myst_nb.core.utils.coalesce_streams``) strips each chunk's trailing
whitespace and adds a newline, so a cut just before a newline shows a blank line that was
never printed, and a cut inside a line breaks it in two. Jupyter and nbval join the chunks
as they came. This extension joins them that way first, so myst-nb has one stream of each
name to tidy, and it works on copies: the executed notebook it saves
(``_build/jupyter_execute``) keeps the chunks as the kernel sent them.
"""
import copy

import myst_nb.core.render as _render


def join_streams(outputs: list) -> list:
    """Outputs with each stream name's chunks joined, in order, into its first one (copies)."""
    joined, first = [], {}
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") in first:
            first[output["name"]]["text"] += output["text"]
            continue
        output = copy.deepcopy(output)
        if output.get("output_type") == "stream":
            first[output["name"]] = output
        joined.append(output)
    return joined


def setup(app):
    coalesce = getattr(_render, "coalesce_streams", None)
    if coalesce is None:  # a myst-nb that no longer has it: fail the build, not the page
        raise RuntimeError("book/_ext/merge_streams.py: myst_nb.core.render.coalesce_streams is gone")
    if not getattr(coalesce, "joins_streams_first", False):
        def coalesce_joined(outputs):
            return coalesce(join_streams(outputs))

        coalesce_joined.joins_streams_first = True
        _render.coalesce_streams = coalesce_joined
    return {"parallel_read_safe": True, "parallel_write_safe": True}
