"""data_generator.py: task sampling (shapes and label layout, seeds, splits)."""

import numpy as np
import pytest

from data_generator import ImageTasks, SinusoidTasks, batch_rng
from tests.helpers import decode, fake_pool, folder_flags, one_error_line
from utils import UserError


@pytest.mark.slow
@pytest.mark.parametrize('extra, message', [
    (['--num_classes=6'], 'the val split has 5 classes, fewer than --num_classes=6'),
    (['--update_batch_size=4'], "the train split's class class_0"),
    (['--train=False', '--test_set=True', '--update_batch_size=12', '--num_classes=2'],
     'a task needs 24 per class (K=12 + 12 query examples)'),
])
def test_tasks_larger_than_the_folder_are_refused_in_one_line(own, tmp_path, run_main, extra,
                                                              message):
    if '--train=False' in extra:
        extra += ['--random_init=True']
    proc = run_main(*folder_flags(own, tmp_path, *extra), check=False)
    assert message in one_error_line(proc)


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

