"""SR data: images and colour, MATLAB bicubic, degradations, data sets, training patches.

Chapter: the SR problem (book/sr_problem.md); appendix: data sets (book/data_sets.md).
"""

from .datasets import (
    BUILTIN_NAMES,
    DATASETS,
    builtin_images,
    dataset_dir,
    download,
    have,
    image_paths,
    load_images,
    or_builtin,
)
from .degrade import bicubic_degrade, bicubic_restore, gaussian_degrade, modcrop
from .image import (
    Photo,
    check_photo_path,
    quantize,
    read_image,
    read_photo,
    rgb_to_y,
    rgb_to_ycbcr,
    save_image,
    save_photo,
    to_y,
    ycbcr_to_rgb,
)
from .patches import SRCNNPatches, SRGANPatches, VDSRPatches, grid_patches
from .resize import imresize, imresize_torch

__all__ = [
    "BUILTIN_NAMES", "DATASETS", "builtin_images", "dataset_dir", "download", "have", "image_paths", "load_images",
    "or_builtin",
    "bicubic_degrade", "bicubic_restore", "gaussian_degrade", "modcrop",
    "Photo", "check_photo_path", "read_photo", "save_photo",
    "quantize", "read_image", "rgb_to_y", "rgb_to_ycbcr", "save_image", "to_y", "ycbcr_to_rgb",
    "SRCNNPatches", "SRGANPatches", "VDSRPatches", "grid_patches", "imresize", "imresize_torch",
]
