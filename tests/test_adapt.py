"""scripts/adapt.py: a trained model adapted to a new task of your own."""
import csv
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import (
    ROOT,
    SINE_CHECKPOINT,
    adapt,
    classes_of,
    make_task,
    one_error_line,
    sine_files,
    with_ctrl_c,
)


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

