"""Task sampling: shapes, label layout, splits, rotations, pixel ranges."""
import os

import numpy as np
import pytest

import data_generator
from data import loading, prepared, synthetic
from data_generator import ImageTasks, SinusoidTasks, batch_rng
from utils import UserError


def test_sinusoid_batch_shapes_ranges_and_ab_split():
    batch = SinusoidTasks().sample(batch_rng(0, 0), 25, 'train', 10, 10)
    for key in ('inputa', 'labela', 'inputb', 'labelb'):
        assert batch[key].shape == (25, 10, 1)
    assert np.all((0.1 <= batch['amp']) & (batch['amp'] <= 5.0))
    assert np.all((0 <= batch['phase']) & (batch['phase'] <= np.pi))
    x = np.concatenate([batch['inputa'], batch['inputb']], 1)
    assert np.all(np.abs(x) <= 5.0)
    y = batch['amp'][:, None, None] * np.sin(x - batch['phase'][:, None, None])
    np.testing.assert_allclose(np.concatenate([batch['labela'], batch['labelb']], 1), y)
    assert not np.allclose(batch['inputa'], batch['inputb'])


def test_sinusoid_oracle_appends_amplitude_and_phase():
    batch = SinusoidTasks(oracle=True).sample(batch_rng(0, 0), 3, 'train', 5, 5)
    assert batch['inputa'].shape == (3, 5, 3)
    np.testing.assert_allclose(batch['inputb'][:, :, 1], np.repeat(batch['amp'][:, None], 5, 1))
    np.testing.assert_allclose(batch['inputb'][:, :, 2], np.repeat(batch['phase'][:, None], 5, 1))


def test_batches_are_a_function_of_seed_and_iteration():
    tasks = SinusoidTasks()
    a = tasks.sample(batch_rng(3, 7), 4, 'train', 5, 5)
    b = tasks.sample(batch_rng(3, 7), 4, 'train', 5, 5)
    c = tasks.sample(batch_rng(3, 8), 4, 'train', 5, 5)
    np.testing.assert_array_equal(a['inputa'], b['inputa'])
    assert not np.array_equal(a['inputa'], c['inputa'])


@pytest.fixture(scope='module')
def omniglot_root(tmp_path_factory):
    return synthetic.omniglot_resized_tree(str(tmp_path_factory.mktemp('omni')))


def test_omniglot_split_is_disjoint_and_independent_of_listing_order(omniglot_root, monkeypatch):
    split = loading.omniglot_character_split(omniglot_root, (20, 5))
    assert [len(split[s]) for s in ('train', 'val', 'test')] == [20, 5, 5]
    assert len(set(sum(split.values(), []))) == 30
    real_listdir = os.listdir
    monkeypatch.setattr(os, 'listdir', lambda p: list(reversed(real_listdir(p))))
    assert loading.omniglot_character_split(omniglot_root, (20, 5)) == split


def test_omniglot_split_matches_reference_shuffle(omniglot_root):
    import random
    folder = os.path.join(omniglot_root, 'omniglot_resized')
    alphabets = [a for a in os.listdir(folder) if os.path.isdir(os.path.join(folder, a))]
    chars = sorted(os.path.join(folder, a, c)       # as the reference lists them
                   for a in alphabets for c in os.listdir(os.path.join(folder, a)))
    random.seed(1)
    random.shuffle(chars)
    assert loading.omniglot_character_split(omniglot_root, (20, 5))['train'] == chars[:20]


def test_omniglot_pixels_are_binary_with_ink_one(omniglot_root):
    tasks = data_generator.make_tasks('omniglot', omniglot_root, ['val'], 5, omniglot_split=(20, 5))
    images = tasks.images['val']
    assert images.shape == (5, 20, 28, 28, 1)
    assert tasks.rotate and tasks.invert
    batch = tasks.sample(batch_rng(0, 0), 2, 'val', 1, 1)
    assert set(np.unique(batch['inputa'])) <= {0.0, 1.0}
    # the stored PNGs draw ink black (0) on white (255); the network sees ink as 1
    assert batch['inputa'].mean() < 0.5 and (images == 0).mean() < 0.5


def fake_pool(num_classes=8, per_class=6, size=4):
    """Every image is filled with one code: 100 * class + drawing (identifiable)."""
    codes = 100 * np.arange(num_classes)[:, None] + np.arange(per_class)[None, :]
    images = np.broadcast_to(codes[:, :, None, None, None], (num_classes, per_class, size, size, 1))
    return images.astype(np.uint16)


def decode(inputs, size=4):
    """Image codes of flattened inputs (the pool's images are constant)."""
    return np.rint(inputs.reshape(len(inputs), -1)[:, 0] * 255).astype(int)


@pytest.mark.parametrize('num_classes,k_a,k_b', [(5, 1, 1), (5, 2, 3), (8, 3, 3)])
def test_image_task_layout(num_classes, k_a, k_b):
    tasks = ImageTasks({'train': fake_pool()}, num_classes, rotate=False, invert=False)
    batch = tasks.sample(batch_rng(0, 1), 3, 'train', k_a, k_b)
    assert batch['inputa'].shape == (3, num_classes * k_a, 16)
    assert batch['inputb'].shape == (3, num_classes * k_b, 16)
    assert batch['labelb'].shape == (3, num_classes * k_b, num_classes)
    for t in range(3):
        codes = np.concatenate([decode(batch['inputa'][t]), decode(batch['inputb'][t])])
        labels = np.concatenate([batch['labela'][t], batch['labelb'][t]]).argmax(1)
        assert len(set(codes)) == len(codes)              # no drawing twice, a and b disjoint
        classes = codes // 100
        assert len(set(classes)) == num_classes           # N distinct classes
        for label in range(num_classes):                 # a label is one class
            assert len(set(classes[labels == label])) == 1
            assert np.sum(labels == label) == k_a + k_b
        shots = labels.reshape(k_a + k_b, num_classes)    # shot by shot: each shot all labels
        assert all(sorted(s) == list(range(num_classes)) for s in shots)


def test_class_order_is_reshuffled_per_shot():
    tasks = ImageTasks({'train': fake_pool(per_class=10)}, 5, rotate=False, invert=False)
    batch = tasks.sample(batch_rng(0, 2), 4, 'train', 5, 5)
    orders = batch['labela'].argmax(-1).reshape(4 * 5, 5)
    assert len({tuple(o) for o in orders}) > 1


def test_rotation_is_shared_by_all_drawings_of_a_class():
    rng = np.random.default_rng(0)
    pool = np.repeat(rng.integers(0, 255, (6, 1, 5, 5, 1)), 6, axis=1).astype(np.uint8)
    tasks = ImageTasks({'train': pool}, 5, rotate=True, invert=False)
    rotations_seen = set()
    for i in range(10):
        batch = tasks.sample(batch_rng(0, i), 1, 'train', 2, 2)
        images = np.concatenate([batch['inputa'][0], batch['inputb'][0]]).reshape(-1, 5, 5)
        labels = np.concatenate([batch['labela'][0], batch['labelb'][0]]).argmax(1)
        for label in range(5):
            drawings = images[labels == label]
            assert all(np.array_equal(d, drawings[0]) for d in drawings)
            for c in range(6):
                base = pool[c, 0, :, :, 0] / 255.0
                for k in range(4):
                    if np.allclose(np.rot90(base, k), drawings[0]):
                        rotations_seen.add(k)
    assert rotations_seen == {0, 1, 2, 3}


def test_too_few_images_or_classes_is_a_clear_error():
    with pytest.raises(UserError, match='fewer than --num_classes'):
        ImageTasks({'train': fake_pool(num_classes=4)}, 5, rotate=False, invert=False)
    tasks = ImageTasks({'train': fake_pool(per_class=3)}, 5, rotate=False, invert=False)
    with pytest.raises(UserError, match=r'each class has 3 images; a task needs 4 per class'):
        tasks.sample(batch_rng(0, 0), 1, 'train', 2, 2)


def test_missing_data_names_the_preparation_command(tmp_path):
    with pytest.raises(UserError, match='prepare_omniglot.py'):
        loading.load_omniglot(str(tmp_path), ['train'], 28)
    with pytest.raises(UserError, match='prepare_miniimagenet.py'):
        loading.load_miniimagenet(str(tmp_path), ['train'], 84)


def test_miniimagenet_tasks_counts_and_pixel_range(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), per_class=20)
    root = tmp_path / 'data'
    split_root = root / 'miniImagenet'
    import csv
    import shutil
    for split in ('train', 'val'):
        with open(tmp_path / 'src' / f'{split}.csv') as f:
            for row in csv.DictReader(f):
                os.makedirs(split_root / split / row['label'], exist_ok=True)
                shutil.copy(os.path.join(source, 'images', row['filename']),
                            split_root / split / row['label'] / row['filename'])
        prepared.write_record(str(split_root / split))
    tasks = data_generator.make_tasks('miniimagenet', str(root), ['train', 'val'], 5)
    assert tasks.images['train'].shape == (6, 20, 84, 84, 3)
    assert tasks.images['val'].shape == (5, 20, 84, 84, 3)
    train = tasks.sample(batch_rng(0, 0), 2, 'train', 1, 15)
    assert train['inputa'].shape == (2, 5, 84 * 84 * 3)
    assert train['inputb'].shape == (2, 75, 84 * 84 * 3)
    evaluation = tasks.sample(batch_rng(0, 0), 1, 'val', 5, 5)
    assert evaluation['inputb'].shape == (1, 25, 84 * 84 * 3)
    assert 0.0 <= train['inputa'].min() and train['inputa'].max() <= 1.0
    assert train['inputa'].max() > 0.5   # not inverted: the colours are bright on average
