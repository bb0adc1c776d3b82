"""data/images.py: image files as users have them become the pixels they show."""
import numpy as np
import pytest
from PIL import Image

from data import images


def gradient(dtype, high):
    """A 64x64 horizontal ramp from 0 to `high`."""
    return np.tile(np.linspace(0, high, 64), (64, 1)).astype(dtype)


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped_to_white(tmp_path):
    path = tmp_path / 'scan.png'
    Image.fromarray(gradient(np.uint16, 65535)).save(path)
    assert Image.open(path).mode.startswith('I;16')
    pixels = images.pixels(path, 64, 1)[..., 0]
    assert pixels[:, 0].max() == 0 and pixels[:, -1].min() == 255
    assert abs(pixels.mean() - 127.5) < 1          # the whole range, evenly used


def test_a_float_tiff_in_0_1_is_scaled_to_0_255_not_black(tmp_path):
    path = tmp_path / 'scan.tiff'
    Image.fromarray(gradient(np.float32, 1.0), 'F').save(path)
    pixels = images.pixels(path, 32, 1)[..., 0]
    assert pixels.min() < 5 and pixels.max() > 250 and abs(pixels.mean() - 127.5) < 2


def test_a_float_tiff_outside_0_1_is_scaled_by_its_own_range(tmp_path):
    path = tmp_path / 'depth.tiff'
    Image.fromarray(gradient(np.float32, 1.0) * 3000 - 500, 'F').save(path)
    pixels = images.pixels(path, 64, 1)[..., 0]
    assert pixels.min() == 0 and pixels.max() == 255 and abs(pixels.mean() - 127.5) < 1


def test_a_float_tiff_with_nan_is_refused(tmp_path):
    path = tmp_path / 'nan.tiff'
    values = gradient(np.float32, 1.0)
    values[3, 3] = np.nan
    Image.fromarray(values, 'F').save(path)
    with pytest.raises(images.ImageReadError, match='NaN'):
        images.pixels(path, 32, 1)


@pytest.mark.parametrize('mode, channels', [('RGBA', 3), ('LA', 1), ('RGBA', 1), ('LA', 3)])
def test_a_drawing_on_a_transparent_background_is_composited_on_white(tmp_path, mode, channels):
    """Black strokes (value 0 everywhere) drawn only through the alpha channel: dropping
    the alpha gives a solid black image."""
    bands = len(mode)
    array = np.zeros((40, 40, bands), np.uint8)
    array[10:30, 18:22, -1] = 255                   # a vertical stroke, opaque
    path = tmp_path / 'drawing.png'
    Image.fromarray(array, mode).save(path)
    pixels = images.pixels(path, 40, channels)
    assert pixels.shape == (40, 40, channels)
    assert (pixels[0, 0] == 255).all()              # background: white
    assert (pixels[20, 20] == 0).all()              # the stroke: black


def test_a_palette_image_with_a_transparent_colour_is_composited_on_white(tmp_path):
    image = Image.new('P', (20, 20), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (5, 5, 15, 15))
    path = tmp_path / 'sticker.png'
    image.save(path, transparency=0)
    pixels = images.pixels(path, 20, 3)
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[10, 10]) == (255, 0, 0)


@pytest.mark.parametrize('orientation, top_left', [(1, 'blue'), (6, 'blue'), (3, 'red'),
                                                   (8, 'red')])
def test_a_phone_photo_is_turned_as_its_exif_orientation_says(tmp_path, orientation, top_left):
    """Stored 60x30, left half blue, right half red; orientation 6 shows it turned a
    quarter clockwise (blue on top), 8 counter-clockwise (red on top), 3 upside down."""
    image = Image.new('RGB', (60, 30), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 30, 30))
    exif = image.getexif()
    exif[images.EXIF_ORIENTATION] = orientation
    path = tmp_path / 'photo.jpg'
    image.save(path, exif=exif, quality=95)
    header = images.header(path)
    assert header.size == ((60, 30) if orientation in (1, 3) else (30, 60))
    assert header.plain == (orientation == 1)
    pixels = images.pixels(path, 28, 3).astype(int)
    colour = {'blue': (0, 0, 255), 'red': (255, 0, 0)}[top_left]
    assert np.abs(pixels[2, 2] - colour).max() < 30


def test_an_image_over_the_decompression_bomb_limit_is_named_not_a_crash(tmp_path, monkeypatch):
    path = tmp_path / 'huge.png'
    Image.new('L', (100, 100)).save(path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)      # 100x100 is over twice that
    with pytest.raises(images.ImageReadError, match='decompression-bomb limit'):
        images.header(path)
    with pytest.raises(images.ImageReadError, match='decompression-bomb limit'):
        images.pixels(path, 28, 1)


def test_an_8_bit_image_is_read_as_before(tmp_path):
    """The plain path is unchanged: resized as opened with LANCZOS, then converted."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    path = tmp_path / 'plain.png'
    Image.fromarray(array).save(path)
    expected = np.asarray(Image.fromarray(array).resize((28, 28), Image.LANCZOS).convert('L'))
    np.testing.assert_array_equal(images.pixels(path, 28, 1)[..., 0], expected)
    assert images.header(path).plain
