"""Your own data: a folder of class folders prepared, trained on, evaluated; a trained
model adapted to a new task (scripts/adapt.py); the released checkpoint through it."""
import csv
import io
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
from json import load as json_load

import numpy as np
import pytest
from PIL import Image

from data import loading, prepared, synthetic
from tests.helpers import ROOT, SHARED, run_script, with_ctrl_c

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
    return {s: loading.sorted_dirs(os.path.join(dest, s))
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
    assert prepared.read_info(str(dest)) == {'image_size': 28, 'channels': 3, 'seed': 0,
                                             'split': [64, 16, 20],
                                             'script': 'data/prepare_folder.py'}
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


# ------------------------------------------------------------------ adapt, careless input
SINE_CHECKPOINT = os.path.join(ROOT, 'logs', 'sine_maml',
                               'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm', 'model70000')


def sine_files(folder, support='x,y\n1,0.8\n2,0.9\n-1,-0.4\n', query='x\n0.5\n1.5\n'):
    (folder / 'points.csv').write_text(support)
    (folder / 'xs.csv').write_text(query)
    return [f'--checkpoint={SINE_CHECKPOINT}', f'--support={folder / "points.csv"}',
            f'--query={folder / "xs.csv"}']


@pytest.mark.slow
@pytest.mark.parametrize('support, query, message', [
    ('x,y\n1,0.8\n2,nan\n', 'x\n0.5\n', 'points.csv line 3: y=nan is not a finite number'),
    ('x,y\n1,0.8\n', 'x\n0.5\ninf\n', 'xs.csv line 3: x=inf is not a finite number'),
    ('x,y\n1e39,0.8\n', 'x\n0.5\n', 'points.csv line 2: x=1e39 is not a finite number'),
    ('x,y\n1,0.8\n', 'x\n', 'xs.csv holds no rows below its header x'),
])
def test_adapt_refuses_values_that_are_not_finite_naming_the_row(tmp_path, support, query,
                                                                 message):
    out = tmp_path / 'out.csv'
    line = one_error_line(adapt(*sine_files(tmp_path, support, query), f'--out={out}'))
    assert message in line and not out.exists()


@pytest.mark.slow
def test_adapt_reads_a_csv_saved_by_excel_with_a_byte_order_mark(tmp_path):
    args = sine_files(tmp_path, '\ufeffx,y\n1,0.8\n2,0.9\n', '\ufeffx\n0.5\n')
    proc = adapt(*args, f'--out={tmp_path / "out.csv"}')
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'out.csv').read_text().startswith('x,prediction\n0.5,')


@pytest.mark.slow
def test_adapt_says_the_adaptation_diverged_instead_of_writing_it(tmp_path):
    out = tmp_path / 'out.csv'
    line = one_error_line(adapt(*sine_files(tmp_path), f'--out={out}', '--update_lr=1e6'))
    assert 'the adaptation diverged' in line and not out.exists()


@pytest.mark.slow
def test_adapt_never_writes_over_one_of_its_inputs(own, trained, tmp_path):
    args = sine_files(tmp_path)
    before = (tmp_path / 'points.csv').read_text()
    line = one_error_line(adapt(*args, f'--out={tmp_path / "points.csv"}'))
    assert 'is one of the inputs' in line and (tmp_path / 'points.csv').read_text() == before
    _, checkpoint = trained
    task = make_task(own, tmp_path / 'task', classes_of(own / 'prep')['test'][:5])
    query = sorted((task / 'query').iterdir())[0]
    image = query.read_bytes()
    base = [f'--checkpoint={checkpoint}', f'--support={task / "support"}']
    line = one_error_line(adapt(*base, f'--query={query}', f'--out={query}'))
    assert 'is one of the inputs' in line and query.read_bytes() == image
    line = one_error_line(adapt(*base, f'--query={task / "query"}',
                                f'--out={task / "query" / "predictions.csv"}'))
    assert 'lies inside --query' in line


@pytest.mark.slow
@pytest.mark.parametrize('case', ['loose_support', 'nested_query', 'nested_class'])
def test_adapt_names_input_it_would_ignore(own, trained, tmp_path, case):
    _, checkpoint = trained
    task = make_task(own, tmp_path, classes_of(own / 'prep')['test'][:5])
    first = sorted((task / 'query').iterdir())[0]
    if case == 'loose_support':
        shutil.copy(first, task / 'support' / 'stray.png')
        message = 'holds files beside its class folders (stray.png)'
    elif case == 'nested_query':
        os.makedirs(task / 'query' / 'more')
        shutil.copy(first, task / 'query' / 'more' / 'x.png')
        message = 'holds sub-folders (more)'
    else:
        klass = sorted((task / 'support').iterdir())[0]
        os.makedirs(klass / 'more')
        message = 'holds sub-folders (more)'
    out = tmp_path / 'out.csv'
    line = one_error_line(adapt(f'--checkpoint={checkpoint}', f'--support={task / "support"}',
                                f'--query={task / "query"}', f'--out={out}'))
    assert message in line and not out.exists()


@pytest.mark.slow
def test_adapt_tells_a_folder_of_images_given_to_a_model_it_took_for_a_sinusoid(own, trained,
                                                                                tmp_path):
    task = make_task(own, tmp_path / 'task', classes_of(own / 'prep')['test'][:5])
    out = tmp_path / 'out.csv'
    line = one_error_line(adapt(f'--checkpoint={SINE_CHECKPOINT}',
                                f'--support={task / "support"}', f'--query={task / "query"}',
                                f'--out={out}'))
    assert 'is a folder; a sinusoid model takes CSV files' in line and 'Is a directory' not in line
    _, checkpoint = trained
    bare = tmp_path / 'bare'
    os.makedirs(bare)
    for f in os.listdir(os.path.dirname(checkpoint)):
        if f.startswith('model150.'):
            shutil.copy(os.path.join(os.path.dirname(checkpoint), f), bare / f)
    line = one_error_line(adapt(f'--checkpoint={bare / "model150"}',
                                f'--support={task / "support"}', f'--query={task / "query"}',
                                f'--out={out}'))
    assert 'has no settings.json beside it' in line and '--datasource=' in line


@pytest.mark.slow
def test_adapt_finishes_any_allowed_step_count_and_ctrl_c_ends_it_in_one_line(own, trained,
                                                                              tmp_path):
    """1000 steps, the flag's most, are taken one at a time: nothing is unrolled."""
    _, checkpoint = trained
    task = make_task(own, tmp_path, classes_of(own / 'prep')['test'][:5])
    args = [f'--checkpoint={checkpoint}', f'--support={task / "support"}',
            f'--query={task / "query"}', '--test_num_updates=1000']
    proc = adapt(*args, f'--out={tmp_path / "a.csv"}')
    assert proc.returncode == 0, proc.stderr
    assert 'Adapting to 5 support examples: 1000 steps' in proc.stdout
    child = subprocess.Popen([sys.executable, '-m', 'scripts.adapt', *args,
                              f'--out={tmp_path / "b.csv"}'], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=with_ctrl_c)
    for line in child.stdout:
        if line.startswith('Adapting'):
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130
    assert err.strip() == 'interrupted: nothing was written'
    assert not (tmp_path / 'b.csv').exists()


# ------------------------------------------------------------------ the data a run trained on
def small_folder(root, per_class=16, **kwargs):
    """A prepared folder of 12 classes at 16x16 (train 8, val 2, test 2)."""
    source = synthetic.class_folders(str(root / 'src'), classes=12, per_class=per_class,
                                     **kwargs)
    proc = prepare(source, root / 'prep', '--image_size=16')
    assert proc.returncode == 0, proc.stderr
    return root / 'prep'


def tiny_run(data, logdir, *extra):
    return ['--datasource=folder', f'--data_dir={data}', f'--logdir={logdir}',
            '--meta_batch_size=2', '--update_batch_size=1', '--num_filters=4',
            '--metatrain_iterations=2', '--save_interval=1', '--log=False', '--num_classes=2',
            *extra]


@pytest.mark.slow
def test_a_run_refuses_to_resume_on_changed_data_and_evaluation_says_so(tmp_path, run_main):
    data = small_folder(tmp_path)
    run_main(*tiny_run(data, tmp_path / 'logs'))
    with open(next((tmp_path / 'logs').iterdir()) / 'data.json') as f:
        assert len(json_load(f)['classes']) == 12
    # a train class and a test class gain an image; the folder is prepared again
    split = classes_of(data)
    for name in (split['train'][0], split['test'][0]):
        shutil.copy(tmp_path / 'src' / name / 'img000.png', tmp_path / 'src' / name / 'new.png')
    assert prepare(tmp_path / 'src', data, '--image_size=16').returncode == 0
    line = one_error_line(run_main(*tiny_run(data, tmp_path / 'logs',
                                             '--metatrain_iterations=3'), check=False))
    assert line.endswith(f'was trained on other data than {data} holds: 1 classes changed '
                         f'(train/{split["train"][0]}). Resume it on the data it was trained on '
                         f'({data}), or train on this data in another --logdir')
    proc = run_main(*tiny_run(data, tmp_path / 'logs', '--train=False', '--test_set=True',
                              '--num_test_tasks=2'))
    notes = [line for line in proc.stdout.splitlines() if 'other data' in line]
    assert notes == [f'Note: evaluating on other data than {next((tmp_path / "logs").iterdir())} '
                     f'was trained with (test split: 1 classes changed (test/{split["test"][0]}))']


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


@pytest.mark.slow
def test_images_too_small_for_max_pool_are_refused_naming_the_smallest_size(tmp_path, run_main):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=12, per_class=16)
    assert prepare(source, tmp_path / 'prep', '--image_size=12').returncode == 0
    line = one_error_line(run_main(*tiny_run(tmp_path / 'prep', tmp_path / 'logs',
                                             '--max_pool=True'), check=False))
    assert 'images of 12x12 are too small for --max_pool=True' in line
    assert '--image_size 16 or more' in line


@pytest.mark.slow
def test_advice_names_only_flags_and_causes_that_exist(tmp_path, run_main):
    """Resuming on data of another image size names the images, not an --image_size flag
    of main.py; a grayscale checkpoint evaluated on colour data blames the channels, not
    --num_filters; K=1 is not told to lower K."""
    data = small_folder(tmp_path / 'gray', colour=False)
    run_main(*tiny_run(data, tmp_path / 'logs'))
    assert prepare(tmp_path / 'gray' / 'src', tmp_path / 'big', '--image_size=20').returncode == 0
    line = one_error_line(run_main(*tiny_run(tmp_path / 'big', tmp_path / 'logs',
                                             '--metatrain_iterations=3'), check=False))
    assert 'images of 16x16 (now 20x20)' in line and '--image_size' not in line
    colour = small_folder(tmp_path / 'colour')
    checkpoint = next((tmp_path / 'logs').iterdir()) / 'model2'
    line = one_error_line(run_main(*tiny_run(colour, tmp_path / 'eval', '--train=False',
                                             f'--checkpoint={checkpoint}',
                                             '--num_test_tasks=2'), check=False))
    assert 'images of 1 channel(s) (now 3)' in line and '--channels' not in line
    few = small_folder(tmp_path / 'few', per_class=3)
    line = one_error_line(run_main(*tiny_run(few, tmp_path / 'k1'), check=False))
    assert 'a task needs 16 per class (K=1 + 15 queries): add images to it' in line
    assert 'lower --update_batch_size' not in line
