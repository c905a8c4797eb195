"""The networks of the book, one per file: SRCNN, VDSR, SRResNet, SRGAN's discriminator, VGG19;
and the one list of the kinds of network srlib trains and runs (:data:`KINDS`, :func:`make_model`).
Chapters: SRCNN, VDSR, SRGAN."""

from torch import nn

from ..errors import SRError
from .discriminator import Discriminator
from .srcnn import SRCNN
from .srresnet import SRResNet
from .vdsr import VDSR
from .vgg import VGG19Features

__all__ = ["SRCNN", "VDSR", "SRResNet", "Discriminator", "VGG19Features", "KINDS", "RGB_KINDS", "make_model"]

#: The kinds of network srlib trains and runs, and their classes (``srgan``: its generator).
KINDS = {"srcnn": SRCNN, "vdsr": VDSR, "srresnet": SRResNet, "srgan": SRResNet}
#: The kinds that take the LR RGB image; the others see the bicubic-upscaled image (its Y channel).
RGB_KINDS = ("srresnet", "srgan")


def make_model(kind: str, config: dict) -> nn.Module:
    """The network of ``kind`` (a key of :data:`KINDS`) built from its constructor arguments."""
    if kind not in KINDS:
        raise SRError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns of zero-size layers: refused below in one line
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            model = KINDS[kind](**config)
    except (TypeError, ValueError, RuntimeError) as err:  # an unknown argument, or an impossible value
        first = str(err).partition("\n")[0]
        raise SRError(f"bad settings for {kind}: {first}") from None
    if any(p.numel() == 0 for p in model.parameters()):  # e.g. width=0: builds, but cannot learn
        raise SRError(f"bad settings for {kind}: {config} gives layers without weights")
    return model
