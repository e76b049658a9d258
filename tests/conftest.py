"""Shared test fixtures."""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures returned by the plotting functions are the caller's to close: close them."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
