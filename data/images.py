"""Turning an image file of any size and format into the network's input pixels.

One function serves the folder preparation (data/prepare_folder.py) and a trained model
applied to new images (scripts/adapt.py), so both see pixels made the same way. An
image is resized as opened, as the Omniglot preparation does: PIL resizes 1-bit and
palette images with nearest-neighbour whatever filter is named (a 1-bit drawing stays
binary), everything else with LANCZOS; then it becomes grayscale or RGB.
"""
import numpy as np
from PIL import Image

GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'F')
MODE_OF_CHANNELS = {1: 'L', 3: 'RGB'}


class ImageReadError(Exception):
    """Not an image PIL can read (the message says why)."""


def header(path):
    """(width, height), mode, format and channels (1: grayscale, 3: colour) of an image,
    reading only its header."""
    try:
        with Image.open(path) as image:
            return image.size, image.mode, image.format, channels_of(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(str(err)) from None


def channels_of(image):
    """1 for a grayscale image (a palette image whose colours are all grays included),
    3 for any other: colour becomes RGB."""
    if image.mode in GRAYSCALE_MODES:
        return 1
    if image.mode == 'P':
        palette = image.getpalette() or []
        return 1 if all(palette[i] == palette[i + 1] == palette[i + 2]
                        for i in range(0, len(palette) - 2, 3)) else 3
    return 3


def converted(path, size, channels):
    """The image at `path` as a PIL image of size x size with `channels` channels."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.size != (size, size):
                image = image.resize((size, size), resample=Image.LANCZOS)
            return image.convert(MODE_OF_CHANNELS[channels])
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(str(err)) from None


def pixels(path, size, channels):
    """uint8 [size, size, channels] of the image at `path`, made as `converted` makes it."""
    array = np.asarray(converted(path, size, channels), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array
