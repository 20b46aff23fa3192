"""Training data: paired folders, blur synthesis from sharp photos, frame averaging.

The datasets are map-style datasets for ``torch.utils.data.DataLoader`` yielding
``{"blur": tensor, "sharp": tensor}`` (float32, ``3 × H × W``, values in [0, 1]; the trainer maps
them to each model's input range). Everything else works on uint8 RGB NumPy frames and needs no
torch.
"""

from training.data.augment import ColourJitterConfig
from training.data.degrade import DegradationConfig
from training.data.frame_average import FrameAverageDataset, average_frames
from training.data.paired import DatasetError, PairedFolderDataset
from training.data.psf import blur_kernel_from_trajectory, random_trajectory
from training.data.synthetic import (
    KINDS,
    SynthesisConfig,
    SyntheticBlurDataset,
    blur_video,
    build_validation_set,
    write_validation_set,
)

__all__ = [
    "KINDS",
    "ColourJitterConfig",
    "DatasetError",
    "DegradationConfig",
    "FrameAverageDataset",
    "PairedFolderDataset",
    "SynthesisConfig",
    "SyntheticBlurDataset",
    "average_frames",
    "blur_kernel_from_trajectory",
    "blur_video",
    "build_validation_set",
    "random_trajectory",
    "write_validation_set",
]
