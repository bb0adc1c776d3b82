"""Loading prepared data into memory, checking it against its preparation's record.

Each image folder is read whole, sorted, as uint8 arrays; every file's contents pass
through the record's checksum as they are read (prepared.ContentCheck), so data that
differs from what was prepared is refused naming the files, at no extra reading.
Data made by the original's own scripts (no record) is used when its structure is
the full data set's. `data_identity` is what a run records of the data it trained on.
"""
import io
import os
import random

import numpy as np
from PIL import Image

from data import prepared
from utils import UserError

OMNIGLOT_FOLDER = 'omniglot_resized'


MINIIMAGENET_FOLDER = 'miniImagenet'


OMNIGLOT_SCRIPT = 'data/prepare_omniglot.py'


MINIIMAGENET_SCRIPT = 'data/prepare_miniimagenet.py'


OMNIGLOT_SPLIT = (1100, 100)   # meta-train, validation; the rest (423) is test


def sorted_dirs(folder):
    """Sub-folders, sorted (hidden ones, such as .DS_Store folders, left out)."""
    return sorted(d for d in os.listdir(folder)
                  if not d.startswith('.') and os.path.isdir(os.path.join(folder, d)))


def load_class_images(folder, suffix, mode, size, check):
    """All images of one class folder (sorted) as uint8 [n, size, size, C]; a file that is
    not a readable size x size image is a UserError naming it. `check`: the
    prepared.ContentCheck each file's bytes go through."""
    names = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith(suffix) and not f.startswith('.'))
    if not names:
        raise UserError(f'{folder} holds no {suffix} images; prepare the data again')
    arrays = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with Image.open(io.BytesIO(check.read(path))) as img:
                array = np.asarray(img.convert(mode), dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as err:
            raise UserError(f'{path} is not a readable image ({err}); '
                            f'prepare the data again') from None
        if array.shape[:2] != (size, size):
            raise UserError(f'{path} is {array.shape[1]}x{array.shape[0]}, not {size}x{size}; '
                            f'prepare the data again')
        arrays.append(array)
    stacked = np.stack(arrays)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def stack_classes(class_arrays, what=None):
    """One array of the classes' images; classes of unequal sizes stay a list when
    `what` is None (a folder of your own), and are refused naming `what` otherwise."""
    counts = {a.shape[0] for a in class_arrays}
    if len(counts) == 1:
        return np.stack(class_arrays)
    if what is None:
        return list(class_arrays)
    raise UserError(f'{what}: classes have different numbers of images {sorted(counts)}')


def data_missing(what, folder, data_root, name, prepare):
    """The one-line error for prepared data not found: the fix when --data_dir names the
    data set itself instead of the folder holding it, else how to prepare it."""
    root = os.path.normpath(data_root)
    if os.path.basename(root) == name:
        fix = (f'--data_dir is the folder that holds {name}/: try '
               f'--data_dir={os.path.dirname(root) or "."}')
    else:
        fix = f'prepare {prepare}'
    return UserError(f'{what} not found in {folder}; {fix}')


def omniglot_character_split(data_root, split_sizes=OMNIGLOT_SPLIT):
    """Character folders of all alphabets, sorted, shuffled with seed 1, then split."""
    return omniglot_folders(data_root, split_sizes)[0]


def omniglot_folders(data_root, split_sizes):
    """({split: character folders}, the ContentCheck their images are read through)."""
    folder = os.path.join(data_root, OMNIGLOT_FOLDER)
    if not os.path.isdir(folder):
        raise data_missing('Omniglot data', folder, data_root, OMNIGLOT_FOLDER,
                           'it with `python data/prepare_omniglot.py --source DIR` (or without '
                           '--source to download)')
    check = check_prepared(folder, OMNIGLOT_SCRIPT, 'omniglot')
    characters = [os.path.join(folder, alphabet, char) for alphabet in sorted_dirs(folder)
                  for char in sorted_dirs(os.path.join(folder, alphabet))]
    num_train, num_val = split_sizes
    if len(characters) <= num_train + num_val:
        raise UserError(f'--omniglot_split={num_train},{num_val} leaves no test characters: '
                        f'{folder} holds {len(characters)} (the full set has 1623; if yours has '
                        f'fewer, re-run data/prepare_omniglot.py)')
    random.Random(1).shuffle(characters)
    return {'train': characters[:num_train], 'val': characters[num_train:num_train + num_val],
            'test': characters[num_train + num_val:]}, check


# The full data sets' structure: (depth of the class folders, classes, images per class,
# image suffix). Data made by other scripts (the original's) has no record; it is used
# when its structure is this.
FULL_STRUCTURE = {
    'omniglot': (2, 1623, 20, '.png'),
    'miniimagenet/train': (1, 64, 600, '.jpg'),
    'miniimagenet/val': (1, 16, 600, '.jpg'),
    'miniimagenet/test': (1, 20, 600, '.jpg'),
}


def structure_difference(folder, depth, classes, per_class, suffix):
    """How `folder` differs from a full set of `classes` class folders `depth` levels down
    holding `per_class` images each (None when it does not)."""
    found = [folder]
    for _ in range(depth):
        found = [os.path.join(f, d) for f in found for d in sorted_dirs(f)]
    if len(found) != classes:
        return f'{len(found)} class folders, not {classes}'
    for class_folder in found:
        count = sum(n.lower().endswith(suffix) for n in os.listdir(class_folder))
        if count != per_class:
            return f'{class_folder} holds {count} {suffix} images, not {per_class}'
    return None


def check_prepared(folder, script, full_set=None):
    """Refuse data that differs from what its preparation script verified and recorded,
    by names and sizes now, and return the prepared.ContentCheck that compares the
    contents as they are read (see checked_load). Data without a record (made by other
    scripts) whose structure is the full data set's (FULL_STRUCTURE[full_set]) is used
    as it is, saying so."""
    try:
        recorded = prepared.read_record(folder)
        differ = prepared.differences(folder, recorded=recorded)
    except prepared.RecordError as err:
        structure = FULL_STRUCTURE.get(full_set)
        unlike = structure_difference(folder, *structure) if structure else 'no full set known'
        if unlike:
            also = f', and it is not the full data set either ({unlike})' if structure else ''
            raise UserError(f'{err}, so it cannot be checked{also}: move it away and prepare '
                            f'the data with `python {script} --source DIR`') from None
        _, classes, per_class, suffix = structure
        print(f'Note: {folder} has no {prepared.RECORD} record (made by other scripts?); it has '
              f"the full set's structure ({classes} classes of {per_class} {suffix} images), "
              f'so it is used as it is', flush=True)
        return prepared.ContentCheck(folder)
    if differ:
        raise not_prepared(folder, script, differ)
    return prepared.ContentCheck(folder, recorded)


def not_prepared(folder, script, differ):
    return UserError(f'{folder} is not what {script} prepared: {"; ".join(differ)}. '
                     f'Run `python {script} --source DIR` again')


def refuse_changed_contents(check, script):
    """After loading through `check`: refuse files whose contents differ from the record."""
    if check.differences():
        raise not_prepared(check.folder, script, check.differences())


def load_omniglot(data_root, splits, size, split_sizes=OMNIGLOT_SPLIT):
    """{split: [characters, drawings, size, size, 1]} of the prepared Omniglot."""
    folders, check = omniglot_folders(data_root, split_sizes)
    images = {s: stack_classes([load_class_images(f, '.png', 'L', size, check)
                                for f in folders[s]], f'Omniglot {s}') for s in splits}
    refuse_changed_contents(check, OMNIGLOT_SCRIPT)
    return images


def load_miniimagenet(data_root, splits, size):
    """{split: [classes, images, size, size, 3]} of the prepared miniImagenet."""
    images = {}
    for split in splits:
        folder = os.path.join(data_root, MINIIMAGENET_FOLDER, split)
        if not os.path.isdir(folder) or not sorted_dirs(folder):
            raise data_missing(f'miniImagenet {split} images', folder, data_root,
                               MINIIMAGENET_FOLDER,
                               'them with `python data/prepare_miniimagenet.py --source DIR`')
        check = check_prepared(folder, MINIIMAGENET_SCRIPT, f'miniimagenet/{split}')
        images[split] = stack_classes(
            [load_class_images(os.path.join(folder, c), '.jpg', 'RGB', size, check)
             for c in sorted_dirs(folder)],
            f'miniImagenet {split}')
        refuse_changed_contents(check, MINIIMAGENET_SCRIPT)
    return images


FOLDER_SCRIPT = prepared.FOLDER_SCRIPT


FOLDER_SUFFIXES = ('.png', '.jpg', '.jpeg')


def folder_info(data_root):
    """(image size, channels) of a folder prepared by data/prepare_folder.py, from its record."""
    if not os.path.isdir(data_root):
        raise UserError(f'--data_dir={data_root} is not a folder; prepare your images with '
                        f'`python {FOLDER_SCRIPT} --source SRC --dest {data_root}`')
    try:
        info = prepared.read_info(data_root)
        return int(info['image_size']), int(info['channels'])
    except prepared.RecordError:
        raise UserError(f'--data_dir={data_root} was not made by {FOLDER_SCRIPT} (it holds no '
                        f'readable {prepared.RECORD} record); --datasource=folder takes '
                        f'--data_dir=DIR made by `python {FOLDER_SCRIPT} --source SRC --dest '
                        f'DIR`') from None
    except (KeyError, TypeError, ValueError):
        raise UserError(f'{data_root} was prepared by another script (its record gives no '
                        f'image size); prepare it with `python {FOLDER_SCRIPT}`') from None


def load_folder(data_root, splits):
    """({split: classes' images}, {split: class names}) of a folder of your own."""
    size, channels = folder_info(data_root)
    check = check_prepared(data_root, FOLDER_SCRIPT)
    loaded = load_folder_splits(data_root, splits, size, channels, check)
    refuse_changed_contents(check, FOLDER_SCRIPT)
    return loaded


def load_folder_splits(data_root, splits, size, channels, check):
    mode = 'L' if channels == 1 else 'RGB'
    images, names = {}, {}
    for split in splits:
        folder = os.path.join(data_root, split)
        if not os.path.isdir(folder):
            present = ', '.join(s for s in ('train', 'val', 'test')
                                if os.path.isdir(os.path.join(data_root, s))) or 'none'
            raise UserError(f'{data_root} has no {split} split (it has: {present}); give the '
                            f'source a {split}/ folder of classes and prepare it again')
        names[split] = sorted_dirs(folder)
        images[split] = stack_classes([load_class_images(os.path.join(folder, c),
                                                         FOLDER_SUFFIXES, mode, size, check)
                                       for c in names[split]])
    return images, names


def data_identity(datasource, data_root):
    """{class: digest} of the data a datasource reads from `data_root` (every split;
    None for the sinusoid, which reads none): prepared.class_digests."""
    if datasource == 'omniglot':
        return prepared.class_digests(os.path.join(data_root, OMNIGLOT_FOLDER), 2)
    if datasource == 'miniimagenet':
        found = {}
        for split in ('train', 'val', 'test'):
            folder = os.path.join(data_root, MINIIMAGENET_FOLDER, split)
            if os.path.isdir(folder):
                found.update(prepared.class_digests(folder, 1, prefix=f'{split}/'))
        return found
    if datasource == 'folder':
        return prepared.class_digests(data_root, 2)
    return None
