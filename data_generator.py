"""Task sampling for sinusoid regression, Omniglot and miniImagenet.

Unlike the reference, which pre-generated 200,000 task file lists, tasks are drawn
lazily from images held in memory, so memory does not grow with the number of
training tasks. Each batch is a pure function of (seed, iteration): a resumed run
sees exactly the batches an uninterrupted run would have seen.
"""
import io
import os
import random

import numpy as np
from PIL import Image

from config import DATASOURCES
from data import prepared
from utils import UserError

OMNIGLOT_FOLDER = 'omniglot_resized'
MINIIMAGENET_FOLDER = 'miniImagenet'
OMNIGLOT_SCRIPT = 'data/prepare_omniglot.py'
MINIIMAGENET_SCRIPT = 'data/prepare_miniimagenet.py'
OMNIGLOT_SPLIT = (1100, 100)   # meta-train, validation; the rest (423) is test
EVAL_SEED = 1                  # evaluation tasks are the same whatever --seed


def batch_rng(*keys):
    """A generator determined by integer keys, e.g. (seed, iteration)."""
    return np.random.default_rng([int(k) for k in keys])


def one_hot(labels, depth):
    return np.eye(depth, dtype=np.float32)[labels]


# --------------------------------------------------------------------- sinusoid
class SinusoidTasks:
    """y = A sin(x - phase), A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]."""
    dim_output = 1
    amp_range, phase_range, input_range = (0.1, 5.0), (0.0, np.pi), (-5.0, 5.0)

    def __init__(self, oracle=False):
        self.oracle = oracle
        self.dim_input = 3 if oracle else 1

    def check_shots(self, split, shots_a, shots_b):
        """Any number of points can be drawn."""

    def sample(self, rng, num_tasks, split, shots_a, shots_b):
        """split is ignored (infinite data); 'shots' are points per task."""
        amp = rng.uniform(*self.amp_range, size=num_tasks)
        phase = rng.uniform(*self.phase_range, size=num_tasks)
        x = rng.uniform(*self.input_range, size=(num_tasks, shots_a + shots_b, 1))
        batch = split_ab(self.inputs(x, amp, phase), self.function(x, amp, phase), shots_a)
        batch.update(amp=amp, phase=phase)
        return batch

    @staticmethod
    def function(x, amp, phase):
        return amp[:, None, None] * np.sin(x - phase[:, None, None])

    def inputs(self, x, amp, phase):
        """The network's input: x, and for the oracle also amplitude and phase."""
        if not self.oracle:
            return x
        known = np.broadcast_to(np.stack([amp, phase], -1)[:, None, :], x.shape[:2] + (2,))
        return np.concatenate([x, known], axis=-1)


def split_ab(inputs, labels, num_a):
    """First num_a examples of each task form the a-set, the rest the b-set."""
    return {'inputa': inputs[:, :num_a], 'labela': labels[:, :num_a],
            'inputb': inputs[:, num_a:], 'labelb': labels[:, num_a:]}


# ----------------------------------------------------------------------- images
class ImageTasks:
    """N-way tasks drawn from images held in memory.

    images[split]: per class, uint8 [images of that class, H, W, C] (one array for all
    classes when they hold equally many). A task picks N classes, a rotation per class
    if `rotate`, and shots_a + shots_b distinct images per class. Examples are laid out
    shot by shot, with the class order reshuffled for every shot; labels are the
    classes' positions 0..N-1 in the task, one-hot. class_names[split]: the classes'
    names, for messages.
    """

    def __init__(self, images, num_classes, rotate, invert, class_names=None):
        self.images, self.num_classes = images, num_classes
        self.rotate, self.invert = rotate, invert
        self.class_names = class_names or {}
        first = next(iter(images.values()))[0]
        self.img_size, self.channels = first.shape[1], first.shape[3]
        self.dim_input = self.img_size * self.img_size * self.channels
        self.dim_output = num_classes
        for split, pool in images.items():
            if len(pool) < num_classes:
                raise UserError(f'the {split} split has {len(pool)} classes, '
                                f'fewer than --num_classes={num_classes}')
        # per split, (images of its smallest class, that class's index): read every batch
        self.smallest = {split: min((len(c), i) for i, c in enumerate(pool))
                         for split, pool in images.items()}

    def check_shots(self, split, shots_a, shots_b):
        """Refuse, naming the smallest class, tasks that need more images than it holds."""
        size, smallest = self.smallest[split]
        if size < shots_a + shots_b:
            names = self.class_names.get(split)
            which = f'class {names[smallest]}' if names else 'each class'
            fix = ('lower --update_batch_size' if shots_a > 1 else
                   'add images to it, or leave it out of the data' if names else
                   'prepare the full data set')
            raise UserError(f'the {split} split\'s {which} has {size} images; a task '
                            f'needs {shots_a + shots_b} per class (K={shots_a} + {shots_b} '
                            f'queries): {fix}')

    def sample(self, rng, num_tasks, split, shots_a, shots_b):
        self.check_shots(split, shots_a, shots_b)
        tasks = [self.sample_task(rng, split, shots_a + shots_b) for _ in range(num_tasks)]
        inputs = np.stack([t[0] for t in tasks])
        labels = np.stack([t[1] for t in tasks])
        return split_ab(inputs, labels, self.num_classes * shots_a)

    def sample_task(self, rng, split, shots):
        pool = self.images[split]
        classes = rng.choice(len(pool), self.num_classes, replace=False)
        picks = np.stack([rng.choice(len(pool[c]), shots, replace=False) for c in classes])
        rotations = rng.integers(0, 4, self.num_classes) if self.rotate else np.zeros(
            self.num_classes, int)
        order = np.stack([rng.permutation(self.num_classes) for _ in range(shots)])
        images = [np.rot90(pool[classes[c]][picks[c, s]], rotations[c])
                  for s in range(shots) for c in order[s]]
        return self.to_inputs(np.stack(images)), one_hot(order.reshape(-1), self.num_classes)

    def to_inputs(self, images):
        return image_inputs(images, self.invert)


def image_inputs(images, invert):
    """The network's input rows of uint8 images [n, H, W, C]: pixels scaled to [0, 1],
    inverted (1 - v/255) where the datasource says so."""
    pixels = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return 1.0 - pixels if invert else pixels


# ---------------------------------------------------------------------- loading
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


def load_omniglot(data_root, splits, split_sizes=OMNIGLOT_SPLIT):
    folders, check = omniglot_folders(data_root, split_sizes)
    size = DATASOURCES['omniglot'].img_size
    images = {s: stack_classes([load_class_images(f, '.png', 'L', size, check)
                                for f in folders[s]], f'Omniglot {s}') for s in splits}
    refuse_changed_contents(check, OMNIGLOT_SCRIPT)
    return images


def load_miniimagenet(data_root, splits):
    images, size = {}, DATASOURCES['miniimagenet'].img_size
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


def make_tasks(datasource, data_root, splits, num_classes, oracle=False,
               omniglot_split=OMNIGLOT_SPLIT):
    """The task sampler for a datasource, with the image splits it needs loaded."""
    if datasource == 'sinusoid':
        return SinusoidTasks(oracle=oracle)
    names = None
    if datasource == 'omniglot':
        images = load_omniglot(data_root, splits, omniglot_split)
    elif datasource == 'miniimagenet':
        images = load_miniimagenet(data_root, splits)
    elif datasource == 'folder':
        images, names = load_folder(data_root, splits)
    else:
        raise UserError(f'unknown --datasource={datasource!r}')
    source = DATASOURCES[datasource]
    return ImageTasks(images, num_classes, rotate=source.rotate, invert=source.invert,
                      class_names=names)
