"""Task sampling for sinusoid regression, Omniglot and miniImagenet.

Unlike the reference, which pre-generated 200,000 task file lists, tasks are drawn
lazily from images held in memory, so memory does not grow with the number of
training tasks. Each batch is a pure function of (seed, iteration): a resumed run
sees exactly the batches an uninterrupted run would have seen.
"""
import numpy as np

from config import DATASOURCES
from data import loading
from utils import UserError

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

    def check_shots(self, split, k, query_shots):
        """Any number of points can be drawn."""

    def sample(self, rng, num_tasks, split, k, query_shots):
        """split is ignored (infinite data); 'shots' are points per task."""
        amp = rng.uniform(*self.amp_range, size=num_tasks)
        phase = rng.uniform(*self.phase_range, size=num_tasks)
        x = rng.uniform(*self.input_range, size=(num_tasks, k + query_shots, 1))
        batch = split_support_query(self.inputs(x, amp, phase), self.function(x, amp, phase),
                                    k)
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


def split_support_query(inputs, labels, support_size):
    """The first support_size examples of each task are its support set (inputa, labela:
    the reference's names), the rest its query set (inputb, labelb)."""
    return {'inputa': inputs[:, :support_size], 'labela': labels[:, :support_size],
            'inputb': inputs[:, support_size:], 'labelb': labels[:, support_size:]}


# ----------------------------------------------------------------------- images
class ImageTasks:
    """N-way tasks drawn from images held in memory.

    images[split]: per class, uint8 [images of that class, H, W, C] (one array for all
    classes when they hold equally many). A task picks N classes, a rotation per class
    if `rotate`, and k + query_shots distinct images per class. Examples are laid out
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

    def check_shots(self, split, k, query_shots):
        """Refuse, naming the smallest class, tasks that need more images than it holds."""
        size, smallest = self.smallest[split]
        if size < k + query_shots:
            names = self.class_names.get(split)
            which = f'class {names[smallest]}' if names else 'each class'
            fix = ('lower --update_batch_size' if k > 1 else
                   'add images to it, or leave it out of the data' if names else
                   'prepare the full data set')
            raise UserError(f'the {split} split\'s {which} has {size} images; a task '
                            f'needs {k + query_shots} per class (K={k} + {query_shots} '
                            f'query examples): {fix}')

    def sample(self, rng, num_tasks, split, k, query_shots):
        self.check_shots(split, k, query_shots)
        tasks = [self.sample_task(rng, split, k + query_shots) for _ in range(num_tasks)]
        inputs = np.stack([t[0] for t in tasks])
        labels = np.stack([t[1] for t in tasks])
        return split_support_query(inputs, labels, self.num_classes * k)

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


def make_tasks(datasource, data_root, splits, num_classes, oracle=False,
               omniglot_split=loading.OMNIGLOT_SPLIT):
    """The task sampler for a datasource, with the image splits it needs loaded
    (data/loading.py)."""
    if datasource == 'sinusoid':
        return SinusoidTasks(oracle=oracle)
    source, names = DATASOURCES[datasource], None
    if datasource == 'omniglot':
        images = loading.load_omniglot(data_root, splits, source.img_size, omniglot_split)
    elif datasource == 'miniimagenet':
        images = loading.load_miniimagenet(data_root, splits, source.img_size)
    elif datasource == 'folder':
        images, names = loading.load_folder(data_root, splits)
    else:
        raise UserError(f'unknown --datasource={datasource!r}')
    return ImageTasks(images, num_classes, rotate=source.rotate, invert=source.invert,
                      class_names=names)
