"""srlib: single-image super-resolution with deep networks, the library of the book.

``srlib.data`` (images, MATLAB bicubic, data sets, patches), ``srlib.metrics`` (PSNR and
SSIM as the papers compute them), ``srlib.evaluate`` (benchmark tables), and the
``python -m srlib`` command line.

Appendix: the API (book/api.md), which lists every module and the chapter that explains it.
"""

from .errors import SRError

__version__ = "0.1.0"
__all__ = ["SRError", "__version__"]
