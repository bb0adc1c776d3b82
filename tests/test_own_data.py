"""Your own data: a folder of class folders prepared, trained on, evaluated; a trained
model adapted to a new task (scripts/adapt.py); the released checkpoint through it."""
import csv
import os
import pickle
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import data_generator
from data import prepared, synthetic
from tests.helpers import ROOT, SHARED, run_script

SOURCE_CLASSES, PER_CLASS = 30, 18


def prepare(source, dest, *args):
    return run_script('data/prepare_folder.py', '--source', str(source), '--dest', str(dest),
                      *args)


def one_error_line(proc):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def classes_of(dest):
    return {s: data_generator.sorted_dirs(os.path.join(dest, s))
            for s in ('train', 'val', 'test') if os.path.isdir(os.path.join(dest, s))}


@pytest.fixture(scope='module')
def own(tmp_path_factory):
    """A source of 30 colour classes of mixed image sizes and formats, prepared at 28x28."""
    root = tmp_path_factory.mktemp('own')
    source = synthetic.class_folders(str(root / 'src'), classes=SOURCE_CLASSES,
                                     per_class=PER_CLASS)
    proc = prepare(source, root / 'prep', '--image_size=28')
    assert proc.returncode == 0, proc.stderr
    return root


# ------------------------------------------------------------------ preparation
def test_class_folders_are_split_64_16_20_by_a_seeded_shuffle(own, tmp_path):
    split = classes_of(own / 'prep')
    assert [len(split[s]) for s in ('train', 'val', 'test')] == [19, 5, 6]
    assert sorted(sum(split.values(), [])) == [f'class_{c:02d}' for c in range(SOURCE_CLASSES)]
    assert split['train'] != [f'class_{c:02d}' for c in range(19)]      # shuffled
    same = prepare(own / 'src', tmp_path / 'again', '--image_size=28')
    other = prepare(own / 'src', tmp_path / 'seed1', '--image_size=28', '--seed=1')
    custom = prepare(own / 'src', tmp_path / 'custom', '--image_size=28', '--split=1,1,1')
    assert same.returncode == other.returncode == custom.returncode == 0
    assert classes_of(tmp_path / 'again') == split
    assert classes_of(tmp_path / 'seed1') != split
    assert [len(v) for v in classes_of(tmp_path / 'custom').values()] == [10, 10, 10]


def test_images_are_resized_kept_colour_counted_and_recorded(own):
    dest = own / 'prep'
    assert prepared.read_info(str(dest)) == {'image_size': 28, 'channels': 3}
    assert not prepared.differences(str(dest), checksums=True)
    for split, classes in classes_of(dest).items():
        for name in classes:
            files = os.listdir(dest / split / name)
            source_files = [f for f in os.listdir(own / 'src' / name) if not f.startswith('.')]
            assert len(files) == len(source_files) == PER_CLASS + int(name[-2:]) % 3
            assert not any(f.startswith('.') for f in files)        # .DS_Store left out
            for f in files[:3]:
                with Image.open(dest / split / name / f) as image:
                    assert image.size == (28, 28) and image.mode == 'RGB'


def test_grayscale_stays_one_channel_and_right_sized_images_are_copied(tmp_path):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=5, per_class=3, colour=False)
    for name in ('train', 'test'):
        shutil.copytree(source, tmp_path / 'split' / name)
    exact = tmp_path / 'split' / 'test' / 'class_00' / 'img000.png'      # 30x30 grayscale
    proc = prepare(tmp_path / 'split', tmp_path / 'prep', '--image_size=30')
    assert proc.returncode == 0, proc.stderr
    assert prepared.read_info(str(tmp_path / 'prep'))['channels'] == 1
    assert set(classes_of(tmp_path / 'prep')) == {'train', 'test'}      # the source's splits
    with open(exact, 'rb') as a, open(tmp_path / 'prep/test/class_00/img000.png', 'rb') as b:
        assert a.read() == b.read()
    with Image.open(tmp_path / 'prep/test/class_00/img001.png') as image:   # was a 36x42 JPEG
        assert image.size == (30, 30) and image.mode == 'L'


def test_a_corrupt_image_is_named_and_nothing_is_written(own, tmp_path):
    source = tmp_path / 'src'
    shutil.copytree(own / 'src', source)
    bad = source / 'class_07' / 'img003.png'
    bad.write_bytes(b'\x89PNG not really')
    line = one_error_line(prepare(source, tmp_path / 'prep'))
    assert str(bad) in line and 'not a readable image' in line
    assert not os.path.exists(tmp_path / 'prep') and not os.path.exists(tmp_path / 'prep.partial')


@pytest.mark.parametrize('layout, message', [
    ('mixed', 'mixes split folders (train) with other folders'),
    ('empty_class', 'holds no images'),
    ('too_few', 'too few to split'),
])
def test_a_source_of_another_shape_is_named(tmp_path, layout, message):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=4, per_class=3)
    if layout == 'mixed':
        os.makedirs(tmp_path / 'src' / 'train' / 'x')
    elif layout == 'empty_class':
        os.makedirs(tmp_path / 'src' / 'class_99')
    line = one_error_line(prepare(source, tmp_path / 'prep'))
    assert message in line
    assert not os.path.exists(tmp_path / 'prep')


def test_a_dest_overlapping_the_source_or_a_class_folder_as_source_is_refused(tmp_path):
    source = tmp_path / 'src'
    synthetic.class_folders(str(source), classes=4, per_class=3)
    before = sorted(p for p in source.rglob('*'))
    cases = [(source, source, 'is --source; choose another --dest'),
             (source, source / 'out', 'lies inside --source=.*taken for a class folder'),
             (source / 'class_00', tmp_path, 'lies inside --dest=.*which the output replaces'),
             (source / 'class_00', tmp_path / 'p', 'holds files but no class folders; give the '
                                                  'folder whose sub-folders are the classes')]
    for src, dest, message in cases:
        assert re.search(message, one_error_line(prepare(src, dest)))
    assert sorted(p for p in source.rglob('*')) == before and not (tmp_path / 'p').exists()


def test_rerunning_never_deletes_a_file_the_user_added(own, tmp_path):
    dest = tmp_path / 'prep'
    assert prepare(own / 'src', dest, '--image_size=20').returncode == 0
    mine = dest / 'train' / 'notes.txt'
    mine.write_text('mine')
    line = one_error_line(prepare(own / 'src', dest, '--image_size=20'))
    assert 'train/notes.txt' in line and 'Nothing was changed' in line
    assert mine.read_text() == 'mine'
    mine.unlink()
    assert prepare(own / 'src', dest, '--image_size=24').returncode == 0
    assert prepared.read_info(str(dest))['image_size'] == 24


# ------------------------------------------------------------------ main.py on a folder
def folder_flags(own, logdir, *extra):
    return ['--datasource=folder', f'--data_dir={own / "prep"}', f'--logdir={logdir}',
            '--meta_batch_size=4', '--update_batch_size=1', '--update_lr=0.1',
            '--num_filters=16', '--metatrain_iterations=150', '--print_interval=50', *extra]


@pytest.fixture(scope='module')
def trained(own, tmp_path_factory):
    """A conv net trained 150 iterations on the prepared folder: (logdir, its checkpoint)."""
    from tests.conftest import main_subprocess
    logdir = tmp_path_factory.mktemp('folder_run')
    proc = main_subprocess(*folder_flags(own, logdir))
    assert 'Finished: 150 iterations' in proc.stdout
    folder = os.path.join(logdir, 'cls_5.mbs_4.ubs_1.numstep1.updatelr0.1hidden16batchnorm')
    return logdir, os.path.join(folder, 'model150')


@pytest.mark.slow
def test_a_folder_trains_and_evaluates_through_main(own, trained, run_main):
    logdir, checkpoint = trained
    with open(os.path.join(os.path.dirname(checkpoint), 'settings.json')) as f:
        assert '"image_size": 28' in f.read()
    proc = run_main(*folder_flags(own, logdir, '--train=False', '--test_set=True',
                                  '--num_test_tasks=40'))
    result = os.path.join(os.path.dirname(checkpoint), 'test_ubs1_stepsize0.1_40tasks.pkl')
    with open(result, 'rb') as f:
        accuracy = np.asarray(pickle.load(f)['mses'])
    assert accuracy[:, 0].mean() < 0.45              # chance, before adaptation
    assert accuracy[:, 3].mean() > 0.9               # after 3 steps
    assert 'Evaluating' in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize('extra, message', [
    (['--num_classes=6'], 'the val split has 5 classes, fewer than --num_classes=6'),
    (['--update_batch_size=4'], "the train split's class class_0"),
    (['--train=False', '--test_set=True', '--update_batch_size=12', '--num_classes=2'],
     'a task needs 24 per class (K=12 + 12 queries)'),
])
def test_tasks_larger_than_the_folder_are_refused_in_one_line(own, tmp_path, run_main, extra,
                                                              message):
    if '--train=False' in extra:
        extra += ['--random_init=True']
    proc = run_main(*folder_flags(own, tmp_path, *extra), check=False)
    assert message in one_error_line(proc)


@pytest.mark.slow
def test_a_folder_not_prepared_by_the_script_is_refused(own, tmp_path, run_main):
    line = one_error_line(run_main('--datasource=folder', f'--data_dir={own / "src"}',
                                   f'--logdir={tmp_path}', check=False))
    assert 'was not made by data/prepare_folder.py' in line
    line = one_error_line(run_main('--datasource=folder', f'--logdir={tmp_path}', check=False))
    assert '--datasource=folder takes --data_dir=DIR' in line


# ------------------------------------------------------------------ adapt
def adapt(*args):
    return run_script('-m scripts.adapt', *args)


def make_task(own, root, classes, shots=1, queries=3):
    """A new task from the test classes: support/<class>/ and query/ (files <class>_<i>)."""
    for name in classes:
        files = sorted(f for f in os.listdir(own / 'src' / name) if not f.startswith('.'))
        os.makedirs(root / 'support' / name)
        os.makedirs(root / 'query', exist_ok=True)
        for f in files[:shots]:
            shutil.copy(own / 'src' / name / f, root / 'support' / name / f)
        for f in files[shots:shots + queries]:
            shutil.copy(own / 'src' / name / f, root / 'query' / f'{name}_{f}')
    return root


@pytest.mark.slow
def test_adapt_predicts_a_new_image_task_far_above_chance(own, trained, tmp_path):
    _, checkpoint = trained
    classes = classes_of(own / 'prep')['test'][:5]
    task = make_task(own, tmp_path, classes)
    out = tmp_path / 'predictions.csv'
    proc = adapt(f'--checkpoint={checkpoint}', f'--support={task / "support"}',
                 f'--query={task / "query"}', f'--out={out}')
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15
    assert list(rows[0]) == ['file', 'predicted'] + [f'p_{c}' for c in classes]
    right = [row['file'].startswith(row['predicted'] + '_') for row in rows]
    assert np.mean(right) >= 0.8                    # chance: 0.2
    for row in rows:
        p = np.array([float(row[f'p_{c}']) for c in classes])
        assert abs(p.sum() - 1) < 1e-4 and row['predicted'] == classes[int(p.argmax())]


@pytest.mark.slow
def test_adapt_fits_a_new_sine_far_better_than_no_adaptation(tmp_path):
    checkpoint = os.path.join(ROOT, 'logs', 'sine_maml',
                              'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm', 'model70000')
    rng = np.random.default_rng(3)
    amp, phase = 3.0, 1.0
    x = rng.uniform(-5, 5, 10)
    np.savetxt(tmp_path / 'points.csv', np.c_[x, amp * np.sin(x - phase)], delimiter=',',
               header='x,y', comments='')
    xs = np.linspace(-5, 5, 41)
    np.savetxt(tmp_path / 'xs.csv', xs, header='x', comments='')
    out = tmp_path / 'pred.csv'
    proc = adapt(f'--checkpoint={checkpoint}', f'--support={tmp_path / "points.csv"}',
                 f'--query={tmp_path / "xs.csv"}', f'--out={out}', '--test_num_updates=5')
    assert proc.returncode == 0, proc.stderr
    predicted = np.loadtxt(out, delimiter=',', skiprows=1)
    np.testing.assert_allclose(predicted[:, 0], xs, atol=1e-6)
    truth = amp * np.sin(xs - phase)
    assert np.mean((predicted[:, 1] - truth) ** 2) < 0.1 * np.mean(truth ** 2)


@pytest.mark.slow
def test_adapt_refuses_bad_input_in_one_line_and_writes_nothing(own, trained, tmp_path):
    _, checkpoint = trained
    classes = classes_of(own / 'prep')['test']
    task = make_task(own, tmp_path / 'task', classes[:5])
    four = make_task(own, tmp_path / 'four', classes[:4])
    (tmp_path / 'task' / 'query' / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out.csv'
    base = [f'--checkpoint={checkpoint}', f'--out={out}']
    cases = [
        ([f'--support={four / "support"}', f'--query={four / "query"}'],
         '--support holds 4 class folders, but the model is 5-way'),
        ([f'--support={task / "support"}', f'--query={task / "query"}'],
         'notes.txt is not a readable image'),
        ([f'--support={task / "support"}', f'--query={four / "query"}', '--num_filters=32'],
         'does not fit this model'),
        ([f'--support={task / "support"}', f'--query={four / "query"}',
          f'--checkpoint={tmp_path / "model5"}'], 'not found'),
    ]
    for args, message in cases:
        assert message in one_error_line(adapt(*base, *args))
        assert not out.exists()
    good = [f'--checkpoint={checkpoint}', f'--support={task / "support"}',
            f'--query={task / "query"}']
    assert one_error_line(adapt(*good, f'--out={tmp_path}')) == (
        f'error: --out={tmp_path} is a folder; give a file, such as {tmp_path}/predictions.csv')
    assert one_error_line(adapt(*good, f'--out={tmp_path}/no/out.csv')) == (
        f'error: --out={tmp_path}/no/out.csv: the folder {tmp_path}/no does not exist')


# ------------------------------------------------------------------ the released checkpoint
REFERENCE = os.path.join(SHARED, 'reference', 'model59000')
MINI_SOURCE = os.path.join(SHARED, 'data', 'miniimagenet')
REFERENCE_RESULT = os.path.join(ROOT, 'logs', 'miniimagenet1shot_reference',
                                'cls_5.mbs_4.ubs_1.numstep5.updatelr0.01hidden32maxpoolbatchnorm',
                                'test_ubs1_stepsize0.01.pkl')


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
    assert prepare(tmp_path / 'src', tmp_path / 'folder').returncode == 0
    run_main('--datasource=folder', f'--data_dir={tmp_path / "folder"}', f'--logdir={tmp_path}',
             f'--checkpoint={REFERENCE}', '--num_filters=32', '--max_pool=True',
             '--update_lr=0.01', '--update_batch_size=1', '--meta_batch_size=4',
             '--num_updates=5', '--train=False', '--test_set=True', '--num_test_tasks=60')
    result = os.path.join(tmp_path, 'cls_5.mbs_4.ubs_1.numstep5.updatelr0.01hidden32maxpool'
                                    'batchnorm', 'test_ubs1_stepsize0.01_60tasks.pkl')
    with open(result, 'rb') as f, open(REFERENCE_RESULT, 'rb') as g:
        ours, committed = pickle.load(f)['mses'], pickle.load(g)['mses']
    np.testing.assert_allclose(ours, committed[:60], atol=1e-6)
