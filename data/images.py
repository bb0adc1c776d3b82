"""Turning an image file of any size and format into the network's input pixels.

One function serves the folder preparation (data/prepare_folder.py) and a trained model
applied to new images (scripts/adapt.py), so both see pixels made the same way:

- a phone photo's EXIF orientation is applied first, so it is not read sideways;
- an image with transparency (RGBA, LA, PA, a palette with a transparent colour) is
  composited onto a white background: a drawing on a transparent background keeps its
  strokes instead of turning solid black where the alpha is dropped;
- a 16-bit image (I;16 and kin) is scaled from 0..65535 to 0..255, a 32-bit integer one
  likewise when its values fit 16 bits, else by its own range; a float image (F, as
  float TIFFs) from 0..1 when its values lie there, else by its own range. Plain
  conversion would clip them to white or round them to black;
- the image is resized as opened, as the Omniglot preparation does: PIL resizes 1-bit
  and palette images with nearest-neighbour whatever filter is named (a 1-bit drawing
  stays binary), everything else with LANCZOS; then it becomes grayscale or RGB.
"""
import collections
import warnings

import numpy as np
from PIL import Image, ImageOps

HIGH_DEPTH_MODES = ('I', 'F')                   # and every 'I;16...' mode
GRAYSCALE_MODES = ('1', 'L', 'LA', 'La') + HIGH_DEPTH_MODES
MODE_OF_CHANNELS = {1: 'L', 3: 'RGB'}
WHITE = {'L': 255, 'RGB': (255, 255, 255)}
EXIF_ORIENTATION = 0x0112


Header = collections.namedtuple('Header', 'size mode format channels plain')


class ImageReadError(Exception):
    """Not an image PIL can read (the message says why)."""


def is_high_depth(mode):
    return mode in HIGH_DEPTH_MODES or mode.startswith('I;16')


def has_alpha(image):
    return image.mode in ('RGBA', 'LA', 'La', 'RGBa', 'PA') or 'transparency' in image.info


def opened(path):
    """Image.open with every failure, the decompression-bomb limit's included, as an
    ImageReadError; used as a context manager."""
    try:
        with warnings.catch_warnings():    # (a large photo is read, without PIL's warning)
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError:
        raise ImageReadError(f'it has more than the {2 * Image.MAX_IMAGE_PIXELS:,} pixels PIL '
                             f'opens (its decompression-bomb limit); make it smaller') from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(str(err)) from None


def orientation(image):
    """The EXIF orientation tag (1: as stored)."""
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (ValueError, TypeError, SyntaxError, OSError):
        return 1


def header(path):
    """The Header of an image, read from its header alone: (width, height) as displayed,
    mode, format, channels (1: grayscale, 3: colour), and `plain`: whether nothing but a
    resize and a mode conversion is needed (no orientation, alpha or high bit depth)."""
    with opened(path) as image:
        try:
            turned = orientation(image)
            size = image.size[::-1] if turned in (5, 6, 7, 8) else image.size
            plain = turned == 1 and not has_alpha(image) and not is_high_depth(image.mode)
            return Header(size, image.mode, image.format, channels_of(image), plain)
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageReadError(str(err)) from None


def channels_of(image):
    """1 for a grayscale image (a palette image whose colours are all grays included),
    3 for any other: colour becomes RGB."""
    if image.mode in GRAYSCALE_MODES or is_high_depth(image.mode):
        return 1
    if image.mode in ('P', 'PA'):
        palette = image.getpalette() or []
        return 1 if all(palette[i] == palette[i + 1] == palette[i + 2]
                        for i in range(0, len(palette) - 2, 3)) else 3
    return 3


def converted(path, size, channels):
    """The image at `path` as a PIL image of size x size with `channels` channels."""
    mode = MODE_OF_CHANNELS[channels]
    with opened(path) as image:
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            if has_alpha(image):
                image = on_white(image, mode)
            elif is_high_depth(image.mode):
                image = eight_bit(image, size)
            if image.size != (size, size):
                image = image.resize((size, size), resample=Image.LANCZOS)
            return image.convert(mode)
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageReadError(str(err)) from None


def on_white(image, mode):
    """An image with transparency composited onto a white background (as a viewer shows
    it), in `mode`."""
    rgba = image.convert('RGBA')
    background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert(mode)


def eight_bit(image, size):
    """A 16-bit, 32-bit or float grayscale image as 8-bit 'L', scaled by its range
    (resized first in float, so no precision is lost before the resize)."""
    values = image.convert('F')
    original = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(original)):
        raise ValueError('it holds NaN or infinite pixel values')
    low, high = value_range(image.mode, original)
    if values.size != (size, size):
        values = values.resize((size, size), resample=Image.LANCZOS)
    array = np.asarray(values, dtype=np.float64)
    scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), 'L')


def value_range(mode, values):
    """The (low, high) that map to 0 and 255: the type's range where the values fit it."""
    lowest, highest = float(values.min()), float(values.max())
    if mode == 'F':
        if lowest >= 0 and highest <= 1:
            return 0.0, 1.0
        return lowest, highest
    if lowest >= 0 and highest <= 65535:
        return 0.0, 65535.0
    return lowest, highest


def pixels(path, size, channels):
    """uint8 [size, size, channels] of the image at `path`, made as `converted` makes it."""
    array = np.asarray(converted(path, size, channels), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array
