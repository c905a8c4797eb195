"""The networks of the book, one per file: SRCNN, VDSR, SRResNet, SRGAN's discriminator, VGG19."""

from .discriminator import Discriminator
from .srcnn import SRCNN
from .srresnet import SRResNet
from .vdsr import VDSR
from .vgg import VGG19Features

__all__ = ["SRCNN", "VDSR", "SRResNet", "Discriminator", "VGG19Features"]
