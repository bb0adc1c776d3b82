"""Tiny synthetic datasets in the layouts the preparation scripts read and write.

Each class is a random binary (Omniglot) or colour (miniImagenet) pattern; its
images are noisy copies, so a short training run can learn something.
"""
import csv
import io
import os
import zipfile

import numpy as np
from PIL import Image

from data import prepared


def class_patterns(rng, num_classes, size, channels, blocks=7, ink=0.2):
    """Coarse random block patterns (blocks x blocks cells), easy for a small conv net."""
    coarse = rng.random((num_classes, blocks, blocks, channels)) < ink
    cell = -(-size // blocks)
    return np.repeat(np.repeat(coarse, cell, axis=1), cell, axis=2)[:, :size, :size]


def noisy(pattern, rng, flip=0.03):
    return pattern ^ (rng.random(pattern.shape) < flip)


def omniglot_resized_tree(root, alphabets=3, characters=10, drawings=20, seed=0):
    """root/omniglot_resized/<alphabet>/<character>/*.png, 28x28 1-bit, ink = black."""
    rng = np.random.default_rng(seed)
    patterns = class_patterns(rng, alphabets * characters, 28, 1)
    for a in range(alphabets):
        for c in range(characters):
            folder = os.path.join(root, 'omniglot_resized', f'Alphabet_{a}',
                                  f'character{c + 1:02d}')
            os.makedirs(folder)
            for d in range(drawings):
                ink = noisy(patterns[a * characters + c], rng)[..., 0]
                path = os.path.join(folder, f'{c:04d}_{d:02d}.png')
                Image.fromarray(~ink).convert('1').save(path)
    prepared.write_record(os.path.join(root, 'omniglot_resized'))
    return root


def omniglot_zips(folder, alphabets=(2, 1), characters=3, drawings=4, seed=0):
    """images_background.zip / images_evaluation.zip with 105x105 1-bit PNGs."""
    rng = np.random.default_rng(seed)
    for zip_name, count in zip(('images_background', 'images_evaluation'), alphabets):
        with zipfile.ZipFile(os.path.join(folder, zip_name + '.zip'), 'w') as archive:
            for a in range(count):
                for c in range(characters):
                    for d in range(drawings):
                        image = Image.fromarray(rng.random((105, 105)) > 0.2).convert('1')
                        data = io.BytesIO()
                        image.save(data, format='PNG')
                        archive.writestr(f'{zip_name}/{zip_name}_A{a}/character{c + 1:02d}/'
                                         f'{c:04d}_{d:02d}.png', data.getvalue())
    return folder


def miniimagenet_source(folder, classes=(6, 5, 5), per_class=8, size=84, seed=0, splits=None):
    """<folder>/{train,val,test}.csv and <folder>/images/*.jpg (Ravi & Larochelle layout)."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, 'images'), exist_ok=True)
    for s, (split, num) in enumerate(zip(('train', 'val', 'test'), classes)):
        with open(os.path.join(folder, f'{split}.csv'), 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['filename', 'label'])
            for c in range(num):
                wnid = f'n{s}{c:07d}'
                colour = rng.integers(0, 256, 3)
                for i in range(per_class):
                    name = f'{wnid}{i:08d}.jpg'
                    writer.writerow([name, wnid])
                    if splits is None or split in splits:
                        pixels = np.clip(colour + rng.normal(0, 20, (size, size, 3)), 0, 255)
                        path = os.path.join(folder, 'images', name)
                        Image.fromarray(pixels.astype(np.uint8)).save(path)
    return folder


def miniimagenet_tree(root, classes=(10, 5, 5), per_class=20, size=84, seed=0):
    """root/miniImagenet/{train,val,test}/<wnid>/*.jpg, as prepare_miniimagenet.py writes."""
    rng = np.random.default_rng(seed)
    for split, num in zip(('train', 'val', 'test'), classes):
        for c in range(num):
            folder = os.path.join(root, 'miniImagenet', split, f'n{split[:2]}{c:06d}')
            os.makedirs(folder)
            colour = rng.integers(0, 256, 3)
            for i in range(per_class):
                pixels = np.clip(colour + rng.normal(0, 20, (size, size, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(folder, f'{i:04d}.jpg'))
        prepared.write_record(os.path.join(root, 'miniImagenet', split))
    return root


def class_folders(root, classes=10, per_class=12, colour=True, seed=0):
    """root/<class>/*: a user's own images, one folder per class, of mixed sizes and
    formats (PNG, JPEG, GIF), each class a coloured (or gray) block pattern, its images
    noisy copies; plus hidden files a file manager leaves. Class c holds per_class + c % 3
    images, so classes differ in size."""
    rng = np.random.default_rng(seed)
    channels = 3 if colour else 1
    patterns = class_patterns(rng, classes, 36, channels, blocks=6, ink=0.4)
    formats = ('png', 'jpg', 'gif')
    for c in range(classes):
        folder = os.path.join(root, f'class_{c:02d}')
        os.makedirs(folder)
        for i in range(per_class + c % 3):
            ink = noisy(patterns[c], rng)
            pixels = np.where(ink, 230, 25).astype(np.uint8)
            image = Image.fromarray(pixels if colour else pixels[..., 0])
            side = (30, 36, 50)[i % 3]
            image = image.resize((side, side + (i % 2) * 6))
            image.save(os.path.join(folder, f'img{i:03d}.{formats[i % 3]}'))
        with open(os.path.join(folder, '.DS_Store'), 'wb') as f:
            f.write(b'\x00\x01not an image')
    return root
