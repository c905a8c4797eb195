"""srlib: single-image super-resolution with deep networks, the library of the book.

``srlib.data`` (images, MATLAB bicubic, data sets, patches), ``srlib.metrics`` (PSNR and
SSIM as the papers compute them), ``srlib.evaluate`` (benchmark tables), and the
``python -m srlib`` command line.
"""

from .errors import SRError

__version__ = "0.1.0"
__all__ = ["SRError", "__version__"]
