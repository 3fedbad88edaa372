"""Figures as PNG artifacts: the one place that sets matplotlib up headless, and writes and closes a figure.

    figure, axis = figures.subplots(figsize=(5, 3.2))
    axis.plot(...)
    uri = figures.save(figure, root.join("plots", "loss.png"))   # atomic, local or s3://
"""

from __future__ import annotations

from mmrec import artifacts


def subplots(*args, **kwargs):
    """matplotlib's plt.subplots on the Agg backend (workers and servers have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save(figure, loc: artifacts.Location) -> str:
    """Write the figure as a PNG at `loc` (atomically), close it, and return its URI."""
    import matplotlib.pyplot as plt

    uri = artifacts.write_png(loc, figure)
    plt.close(figure)
    return uri
