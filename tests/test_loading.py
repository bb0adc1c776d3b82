"""data/loading.py: prepared data loaded and checked against its record."""
import csv
import glob
import io
import os
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

import data_generator
from data import loading, prepared, synthetic
from data_generator import batch_rng
from tests.helpers import (
    MINI_SOURCE,
    REFERENCE,
    REFERENCE_RESULT,
    load,
    one_error_line,
    prepare_folder,
    run_script,
    small_folder,
    tiny_run,
)
from utils import UserError


def test_a_missing_omniglot_character_is_named_instead_of_reshuffling_the_splits(tmp_path):
    root = synthetic.omniglot_resized_tree(str(tmp_path), alphabets=2, characters=10)
    splits = loading.omniglot_character_split(root, (10, 5))
    shutil.rmtree(os.path.join(root, 'omniglot_resized', 'Alphabet_1', 'character04'))
    with pytest.raises(UserError, match=r'20 missing \(Alphabet_1/character04/0003_00.png'):
        loading.omniglot_character_split(root, (10, 5))
    with open(os.path.join(root, 'omniglot_resized', prepared.RECORD), 'w') as f:
        f.write('1623 32460 9999')           # the count marker of older versions
    with pytest.raises(UserError, match='unreadable or from an older version.*move it away'):
        loading.omniglot_character_split(root, (10, 5))
    assert len(splits['test']) == 5


@pytest.mark.parametrize('load,name', [
    (lambda root: loading.load_omniglot(root, ['train'], 28), 'omniglot_resized'),
    (lambda root: loading.load_miniimagenet(root, ['train'], 84), 'miniImagenet'),
])
def test_a_data_dir_naming_the_data_set_itself_points_to_its_parent(tmp_path, load, name):
    (tmp_path / name).mkdir()
    with pytest.raises(UserError, match=f'; --data_dir is the folder that holds {name}/: try '
                                        f'--data_dir={tmp_path}$'):
        load(str(tmp_path / name) + '/')
    with pytest.raises(UserError, match='; prepare (it|them) with `python data/prepare_'):
        load(str(tmp_path / 'elsewhere'))


def test_hidden_files_in_the_omniglot_tree_are_ignored(omniglot):
    root, character = omniglot
    for folder in (os.path.join(root, 'omniglot_resized'), os.path.dirname(character), character):
        open(os.path.join(folder, '.DS_Store'), 'w').close()
    assert load(root)['test'].shape == (10, 20, 28, 28, 1)


@pytest.mark.parametrize('damage,message', [
    ('truncate', 'is not a readable image'),
    ('not_an_image', 'is not a readable image'),
    ('wrong_size', 'is 30x30, not 28x28'),
    ('empty_folder', 'holds no .png images'),
])
def test_damaged_omniglot_images_are_named(omniglot, damage, message):
    from PIL import Image
    root, character = omniglot
    first = os.path.join(character, sorted(os.listdir(character))[0])
    if damage == 'truncate':
        data = open(first, 'rb').read()
        open(first, 'wb').write(data[:len(data) // 2])
    elif damage == 'not_an_image':
        open(first, 'w').write('hello')
    elif damage == 'wrong_size':
        Image.new('L', (30, 30)).save(first)
    else:
        for name in os.listdir(character):
            os.remove(os.path.join(character, name))
    prepared.write_record(os.path.join(root, 'omniglot_resized'))   # as if prepared that way
    with pytest.raises(UserError, match=message) as err:
        load(root, split=(1, 1))
    assert (character if damage == 'empty_folder' else first) in str(err.value)


def test_an_omniglot_split_too_large_says_so(omniglot):
    root, _ = omniglot
    with pytest.raises(UserError, match='--omniglot_split=16,4 leaves no test characters'):
        load(root, split=(16, 4))


def test_data_made_by_other_scripts_is_used_when_it_is_the_full_set(omniglot, monkeypatch,
                                                                      capsys):
    """The original's own scripts leave no record: such a tree is used when its structure
    is the full set's (here a small 'full set' of 20 characters of 20 drawings)."""
    monkeypatch.setitem(loading.FULL_STRUCTURE, 'omniglot', (2, 20, 20, '.png'))
    root, _ = omniglot
    folder = os.path.join(root, 'omniglot_resized')
    os.remove(os.path.join(folder, prepared.RECORD))
    assert load(root)['train'].shape[:2] == (5, 20)
    assert 'has no .prepared record (made by other scripts?)' in capsys.readouterr().out
    os.remove(glob.glob(os.path.join(folder, 'Alphabet_1', 'character03', '*.png'))[0])
    with pytest.raises(UserError, match=r'not the full data set either \(.*character03 holds 19 '
                                        r'.png images, not 20\)'):
        load(root)
    shutil.rmtree(os.path.join(folder, 'Alphabet_1', 'character03'))
    with pytest.raises(UserError, match=r'19 class folders, not 20'):
        load(root)


@pytest.mark.slow
def test_a_folder_not_prepared_by_the_script_is_refused(own, tmp_path, run_main):
    line = one_error_line(run_main('--datasource=folder', f'--data_dir={own / "src"}',
                                   f'--logdir={tmp_path}', check=False))
    assert 'was not made by data/prepare_folder.py' in line
    line = one_error_line(run_main('--datasource=folder', f'--logdir={tmp_path}', check=False))
    assert '--datasource=folder takes --data_dir=DIR' in line


@pytest.mark.slow
@pytest.mark.skipif(not (os.path.exists(REFERENCE + '.index') and os.path.isdir(MINI_SOURCE)),
                    reason='the released checkpoint or the miniImagenet source is absent '
                           '(../shared)')
def test_the_released_checkpoint_scores_the_same_through_a_folder(tmp_path, run_main):
    """The miniImagenet test images as a folder of your own: the same network and tasks as
    --datasource=miniimagenet, so the same per-task accuracies as its committed result."""
    mini = tmp_path / 'miniImagenet'
    proc = run_script('data/prepare_miniimagenet.py', '--source', MINI_SOURCE, '--dest',
                      str(mini))
    assert proc.returncode == 0, proc.stderr
    os.makedirs(tmp_path / 'src')
    os.symlink(mini / 'test', tmp_path / 'src' / 'test')
    assert prepare_folder(tmp_path / 'src', tmp_path / 'folder').returncode == 0
    run_main('--datasource=folder', f'--data_dir={tmp_path / "folder"}', f'--logdir={tmp_path}',
             f'--checkpoint={REFERENCE}', '--num_filters=32', '--max_pool=True',
             '--update_lr=0.01', '--update_batch_size=1', '--meta_batch_size=4',
             '--num_updates=5', '--train=False', '--test_set=True', '--num_test_tasks=60')
    result = os.path.join(tmp_path, 'cls_5.mbs_4.ubs_1.numstep5.updatelr0.01hidden32maxpool'
                                    'batchnorm', 'test_ubs1_stepsize0.01_60tasks.pkl')
    with open(result, 'rb') as f, open(REFERENCE_RESULT, 'rb') as g:
        ours, committed = pickle.load(f)['mses'], pickle.load(g)['mses']
    np.testing.assert_allclose(ours, committed[:60], atol=1e-6)


@pytest.mark.slow
def test_a_prepared_image_replaced_by_another_of_the_same_size_is_refused(tmp_path, run_main):
    data = small_folder(tmp_path)
    victim = sorted((data / 'train').rglob('*.png'))[0]
    size = victim.stat().st_size
    other = io.BytesIO()
    Image.new('RGB', (16, 16), (0, 0, 0)).save(other, format='PNG')
    replacement = other.getvalue()
    assert len(replacement) < size
    victim.write_bytes(replacement + b'\0' * (size - len(replacement)))   # after IEND
    line = one_error_line(run_main(*tiny_run(data, tmp_path / 'logs'), check=False))
    relative = os.path.relpath(victim, data)
    assert f'is not what data/prepare_folder.py prepared: 1 changed ({relative})' in line


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


def test_missing_data_names_the_preparation_command(tmp_path):
    with pytest.raises(UserError, match='prepare_omniglot.py'):
        loading.load_omniglot(str(tmp_path), ['train'], 28)
    with pytest.raises(UserError, match='prepare_miniimagenet.py'):
        loading.load_miniimagenet(str(tmp_path), ['train'], 84)


def test_miniimagenet_tasks_counts_and_pixel_range(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), per_class=20)
    root = tmp_path / 'data'
    split_root = root / 'miniImagenet'
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

