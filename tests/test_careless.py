"""Careless commands and damaged files that used to lose work or give a wrong number
with exit 0: each now keeps the work and either does the right thing or refuses in
one line naming the file or setting at fault."""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import results
import run_folder
import tf_quiet
import utils
from data import loading, prepared, synthetic
from tests.helpers import (
    ROOT,
    SINE,
    execute,
    interrupt_main,
    run_script,
    sine,
    sine_dir,
    with_ctrl_c,
)
from utils import UserError


def one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def test_a_fresh_start_is_refused_where_an_earlier_run_saved_checkpoints(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=2', '--resume=False'))  # nothing there yet
    folder = sine_dir(str(tmp_path))
    with pytest.raises(UserError, match=r'--resume=False starts afresh, but .* holds model2 of '
                                        r'an earlier run; move that folder away'):
        execute(*sine(tmp_path, '--metatrain_iterations=3', '--resume=False'))
    assert [n for n, _ in run_folder.checkpoints_in(folder)] == [2]


# ------------------------------------------------- the checkpoint state file
@pytest.mark.parametrize('damage', ['deleted', 'garbage', 'empty', 'names_a_missing_model'])
@pytest.mark.slow
def test_a_lost_or_damaged_state_file_still_resumes_from_the_newest_checkpoint(tmp_path, capsys,
                                                                               damage):
    execute(*sine(tmp_path, '--metatrain_iterations=10', '--save_interval=5'))
    state = os.path.join(sine_dir(str(tmp_path)), 'checkpoint')
    if damage == 'deleted':
        os.remove(state)
    else:
        text = {'garbage': '\x00\x17not a proto {{', 'empty': '',
                'names_a_missing_model': 'model_checkpoint_path: "model99"\n'}[damage]
        with open(state, 'w') as f:
            f.write(text)
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--save_interval=5'))
    assert 'iterations 11..12' in capsys.readouterr().out
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--train=False', '--num_test_tasks=2'))
    stored = results.read_eval_pickle(os.path.join(sine_dir(str(tmp_path)),
                                                 'test_ubs5_stepsize0.01_val_2tasks.csv'))
    assert stored['checkpoint'] == 'model12'


@pytest.mark.slow
def test_checkpoint_files_none_of_which_is_readable_are_refused_not_overwritten(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=5'))
    folder = sine_dir(str(tmp_path))
    os.remove(os.path.join(folder, 'checkpoint'))
    for data in glob.glob(os.path.join(folder, 'model*.data-*')):
        with open(data, 'r+b') as f:
            f.truncate(3)
    with pytest.raises(UserError, match='no readable checkpoint in'):
        execute(*sine(tmp_path, '--metatrain_iterations=8'))
    assert os.path.getsize(glob.glob(os.path.join(folder, 'model5.data-*'))[0]) == 3


@pytest.mark.slow
def test_a_state_file_whose_checkpoints_are_all_gone_is_refused_not_retrained(tmp_path, capsys):
    execute(*sine(tmp_path, '--metatrain_iterations=5'))
    folder = sine_dir(str(tmp_path))
    for path in glob.glob(os.path.join(folder, 'model5.*')):
        os.remove(path)                      # e.g. a copy of the folder without its weights
    with pytest.raises(UserError, match=r'lost its checkpoint files: its checkpoint state names '
                                        r'model5, but no model\*\.index file is there'):
        execute(*sine(tmp_path, '--metatrain_iterations=8'))
    assert run_folder.checkpoints_in(folder) == []
    capsys.readouterr()
    execute(*sine(tmp_path, '--metatrain_iterations=3', '--resume=False'))
    assert 'iterations 1..3' in capsys.readouterr().out
    assert [n for n, _ in run_folder.checkpoints_in(folder)] == [3]


# ---------------------------------------------------------------- settings
@pytest.mark.slow
def test_a_folder_without_checkpoints_takes_the_corrected_settings(tmp_path, capsys):
    folder = sine_dir(str(tmp_path))
    os.makedirs(folder)
    # a run that failed before its first save
    run_folder.check_settings(folder, {'meta_lr': 1000.0})
    execute(*sine(tmp_path, '--metatrain_iterations=2'))
    assert run_folder.read_settings(folder)['meta_lr'] == 0.001
    with pytest.raises(UserError, match=r'was trained with --meta_lr=0.001 \(now 0.01\)'):
        execute(*sine(tmp_path, '--metatrain_iterations=4', '--meta_lr=0.01'))


@pytest.mark.parametrize('flags,message', [
    (['--norm=None'], r'--norm=batch_norm \(now None\)'),
    (['--max_pool=True'], r'--max_pool=False \(now True\)'),
    (['--num_classes=3'], None),           # sinusoid ignores it, but it names the experiment
])
@pytest.mark.slow
def test_a_checkpoint_is_evaluated_only_with_the_network_it_was_trained_as(tmp_path, flags,
                                                                           message):
    train = [*sine(tmp_path, '--metatrain_iterations=2'), '--norm=batch_norm']
    execute(*train)
    checkpoint = os.path.join(sine_dir(str(tmp_path))[:-len('nonorm')] + 'batchnorm', 'model2')
    evaluate = [*train, '--train=False', '--num_test_tasks=2', f'--checkpoint={checkpoint}']
    execute(*evaluate)                       # its own flags: fine
    if message is None:
        with pytest.raises(UserError, match=r'--num_classes=5 \(now 3\)'):
            execute(*evaluate, *flags)
        return
    with pytest.raises(UserError, match=message):
        execute(*evaluate, *flags)
    os.remove(os.path.join(os.path.dirname(checkpoint), run_folder.SETTINGS_FILE))
    if flags == ['--norm=None']:             # without settings.json the weights themselves tell
        with pytest.raises(UserError, match=r'holds model/0/beta.*which this model lacks'):
            execute(*evaluate, *flags)


# ------------------------------------------------------------------ results
def test_a_full_disk_while_writing_a_result_leaves_the_previous_pair_whole(tmp_path):
    folder = str(tmp_path)
    name = 'test_ubs5_stepsize0.01'
    results.write_eval_results(folder, name, np.full((3, 2), 0.5), checkpoint='model1')
    before = {f: open(os.path.join(folder, f), 'rb').read() for f in os.listdir(folder)}
    os.symlink('/dev/full', os.path.join(folder, f'test_ubs5_stepsize0.01.pkl.tmp{os.getpid()}'))
    with pytest.raises(UserError, match='cannot write .*test_ubs5_stepsize0.01.pkl .No space left'):
        results.write_eval_results(folder, name, np.full((3, 2), 0.9), checkpoint='model1')
    assert {f: open(os.path.join(folder, f), 'rb').read() for f in os.listdir(folder)} == before


def test_a_failed_write_says_whether_an_older_file_was_kept(tmp_path):
    with pytest.raises(UserError, match=r'cannot write .*/no/r.md \(No such file or directory\); '
                                        r'nothing was written$'):
        utils.write_atomically(str(tmp_path / 'no' / 'r.md'), 'new')
    (tmp_path / 'r.md').write_text('old')
    os.symlink('/dev/full', tmp_path / f'r.md.tmp{os.getpid()}')
    with pytest.raises(UserError, match=r'\(No space left on device\); it was left as it was$'):
        utils.write_atomically(str(tmp_path / 'r.md'), 'new')
    assert (tmp_path / 'r.md').read_text() == 'old'


@pytest.mark.parametrize('damage', ['no_pkl', 'empty_pkl', 'garbage_pkl', 'short_csv'])
def test_half_a_result_is_not_up_to_date_and_the_table_names_it(tmp_path, damage):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    os.makedirs(os.path.dirname(path))
    results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4],
                             np.full((600, 11), 0.9), checkpoint='model10', split='test')
    assert results.result_of(path, 'model10')
    pkl = path[:-4] + '.pkl'
    if damage == 'no_pkl':
        os.remove(pkl)
    else:
        target, text = {'empty_pkl': (pkl, b''), 'garbage_pkl': (pkl, b'\x80\x04garbage'),
                        'short_csv': (path, b'update0\r\n0.5\r\n')}[damage]
        with open(target, 'wb') as f:
            f.write(text)
    assert not results.result_of(path, 'model10')
    named = os.path.basename(pkl if damage == 'no_pkl' else target)
    with pytest.raises(UserError, match=f'{named} is missing or damaged'):
        make_table.make_table(str(tmp_path))


def test_a_hand_edited_result_mean_is_refused_not_printed(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    os.makedirs(os.path.dirname(path))
    values = np.random.default_rng(0).random((600, 11))
    results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4], values,
                             checkpoint='model10', split='test')
    assert '| Omniglot 5-way 1-shot | 98.70 +- 0.40 |' in make_table.make_table(str(tmp_path))
    with open(path) as f:
        rows = f.read().splitlines()
    means = rows[1].split(',')
    means[3] = '0.999'                               # the step the table reports
    with open(path, 'w') as f:
        f.write('\n'.join([rows[0], ','.join(means), *rows[2:]]) + '\n')
    with pytest.raises(UserError, match='disagrees with the per-task values in '
                                        'test_ubs1_stepsize0.4.pkl'):
        make_table.make_table(str(tmp_path))
    assert not results.result_of(path, 'model10')


@pytest.mark.slow
def test_make_table_with_a_missing_logdir_writes_nothing(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('top\n<!-- results: here -->\nold rows\n<!-- /results -->\nend\n')
    proc = run_script('-m scripts.make_table', '--readme', str(readme),
                      '--logdir', str(tmp_path / 'typo'))
    assert 'is not a folder; nothing was written' in one_error_line(proc)
    assert 'old rows' in readme.read_text()
    readme.write_text('no markers here\n')
    proc = run_script('-m scripts.make_table', '--readme', str(readme), '--logdir', str(tmp_path))
    assert 'lacks the results markers' in one_error_line(proc)
    assert readme.read_text() == 'no markers here\n'


# --------------------------------------------------------------------- data
@pytest.mark.parametrize('case', ['user_folder', 'dest_is_source', 'user_partial'])
@pytest.mark.slow
def test_prepare_omniglot_never_replaces_a_folder_it_did_not_make(tmp_path, case):
    os.makedirs(tmp_path / 'zips')
    source = synthetic.omniglot_zips(str(tmp_path / 'zips'))
    dest = {'user_folder': str(tmp_path / 'mine'), 'dest_is_source': source,
            'user_partial': str(tmp_path / 'out')}[case]
    precious = dest + ('.partial' if case == 'user_partial' else '')
    os.makedirs(precious, exist_ok=True)
    with open(os.path.join(precious, 'thesis.tex'), 'w') as f:
        f.write('years of work')
    before = sorted(os.listdir(precious))
    proc = run_script('data/prepare_omniglot.py', '--source', source, '--dest', dest,
                  '--expect_characters=9', '--expect_images=36')
    assert f'{precious} exists and was not made by data/prepare_omniglot.py' in one_error_line(proc)
    assert sorted(os.listdir(precious)) == before
    shutil.rmtree(precious)
    os.makedirs(precious)                    # an empty folder holds nothing to lose
    if case != 'dest_is_source':
        assert run_script('data/prepare_omniglot.py', '--source', source, '--dest', dest,
                      '--expect_characters=9', '--expect_images=36').returncode == 0


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


@pytest.mark.parametrize('damage', ['same_size', 'truncated'])
@pytest.mark.slow
def test_a_damaged_prepared_image_is_named_and_rebuilt(tmp_path, damage):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val', 'test'))
    dest = str(tmp_path / 'miniImagenet')
    prepare = ['data/prepare_miniimagenet.py', '--source', source, '--dest', dest]
    assert run_script(*prepare).returncode == 0
    image = sorted(glob.glob(os.path.join(dest, 'val', '*', '*.jpg')))[3]
    good = open(image, 'rb').read()
    with open(image, 'r+b') as f:
        if damage == 'truncated':
            f.truncate(len(good) // 2)
        else:                                # other bytes, same size: only the checksum tells
            f.seek(len(good) // 2)
            f.write(bytes(255 - b for b in good[len(good) // 2:len(good) // 2 + 16]))
    changed = os.path.relpath(image, os.path.join(dest, 'val'))
    found = prepared.differences(os.path.join(dest, 'val'), checksums=True)
    assert found == [f'1 changed ({changed})']
    if damage == 'truncated':                # main.py's quick check (names and sizes) sees it too
        with pytest.raises(UserError, match=f'is not what data/prepare_miniimagenet.py prepared: '
                                            f'1 changed \\({changed}\\)'):
            loading.load_miniimagenet(str(tmp_path), ['val'], 84)
    again = run_script('data/prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert again.returncode == 0
    assert 'preparing it again' in again.stdout and 'test: already prepared' in again.stdout
    assert open(image, 'rb').read() == good


# ------------------------------------------------------- full disk, Ctrl-C
def mounted_tmpfs(folder, options, what):
    """A real tmpfs mounted at `folder` with `options` while the test runs; needs root."""
    folder.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount {what} here ({mounted.stderr.strip()}); run as root')
    yield folder
    subprocess.run(['umount', str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system."""
    yield from mounted_tmpfs(tmp_path / 'disk', 'size=1m', 'a small tmpfs')


@pytest.fixture
def read_only_disk(tmp_path):
    """A real read-only file system."""
    yield from mounted_tmpfs(tmp_path / 'read_only', 'ro,size=1m', 'a read-only tmpfs')


@pytest.mark.slow
@pytest.mark.parametrize('command', [
    'data/prepare_omniglot.py --source SRC --dest RO/omniglot_resized',
    'data/prepare_miniimagenet.py --source SRC --dest RO/miniImagenet',
    'data/prepare_folder.py --source SRC/classes --dest RO/mine',
    '-m scripts.reproduce --smoke --only sine_oracle --logdir RO/logs',
    'main.py --datasource=sinusoid --metatrain_iterations=2 --logdir=RO/logs',
])
def test_a_read_only_destination_is_one_line(tmp_path, read_only_disk, command):
    source = tmp_path / 'src'
    synthetic.class_folders(str(source / 'classes'), classes=6, per_class=2)
    synthetic.omniglot_zips(str(source))
    synthetic.miniimagenet_source(str(source), splits=('val',))
    proc = run_script(command.replace('SRC', str(source)).replace('RO', str(read_only_disk)))
    line = one_error_line(proc)
    assert str(read_only_disk) in line and 'Read-only file system' in line
    assert 'space' not in line           # more room would not help


@pytest.mark.slow
def test_a_full_disk_at_start_asks_for_space(small_disk):
    os.makedirs(os.path.join(small_disk, 'logs'))
    fill(small_disk, leave=0)
    proc = run_script('main.py', *SINE, f'--logdir={small_disk}/logs', '--metatrain_iterations=2')
    assert one_error_line(proc).endswith(
        '(No space left on device); free some space or choose another --logdir')


@pytest.mark.slow
@pytest.mark.parametrize('script', ['prepare_omniglot.py', 'prepare_miniimagenet.py',
                                    'prepare_folder.py'])
def test_an_empty_dest_is_refused(tmp_path, script):
    proc = run_script(f'data/{script}', '--source', str(tmp_path), '--dest', '')
    assert proc.returncode == 2 and 'argument --dest: must name a folder' in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize('script', ['prepare_omniglot.py', 'prepare_miniimagenet.py',
                                    'prepare_folder.py'])
def test_a_source_that_is_a_file_or_missing_is_refused_before_any_work(tmp_path, script):
    """The downloaded zip given as --source is answered with its folder; a mistyped
    --source used to pass unnoticed where the data was already prepared."""
    archive = tmp_path / 'images.zip'
    archive.write_bytes(b'PK')
    dest = str(tmp_path / 'dest')
    proc = run_script(f'data/{script}', '--source', str(archive), '--dest', dest)
    assert proc.returncode == 2, proc.stderr
    advice = (f'give the folder holding it, {tmp_path}' if script != 'prepare_folder.py' else
              '--source is the folder whose sub-folders are the classes (if it lies in a class '
              f'folder, that is {tmp_path.parent})')
    joint = ':' if script != 'prepare_folder.py' else ';'
    assert proc.stderr == f'error: argument --source: {archive} is a file{joint} {advice}\n'
    proc = run_script(f'data/{script}', '--source', str(tmp_path / 'typo'), '--dest', dest)
    assert proc.returncode == 2 and f'{tmp_path / "typo"} is not a folder' in proc.stderr
    assert not os.path.exists(dest)


def fill(folder, leave):
    """Fill the file system holding `folder` but for `leave` bytes; returns the filler's path."""
    path = os.path.join(folder, 'filler')
    with open(path, 'wb', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * 4096)
        except OSError:
            pass
    os.truncate(path, max(os.path.getsize(path) - leave, 0))
    return path


@pytest.mark.slow
def test_a_full_disk_stops_training_in_one_line_and_keeps_the_last_checkpoint(small_disk):
    args = [*SINE, f'--logdir={small_disk}', '--log=False', '--save_interval=2']
    assert run_script('main.py', *args, '--metatrain_iterations=2').returncode == 0
    filler = fill(small_disk, leave=12288)   # room for the lock, not for a checkpoint
    proc = run_script('main.py', *args, '--metatrain_iterations=4')
    assert 'cannot save model4' in one_error_line(proc) and 'model2 is kept' in proc.stderr
    assert 'No space left on device' in proc.stderr
    os.remove(filler)
    assert 'iterations 3..4' in run_script('main.py', *args, '--metatrain_iterations=4').stdout


@pytest.mark.slow
def test_ctrl_c_during_evaluation_exits_130_and_writes_no_half_result(tmp_path):
    args = sine(tmp_path, '--metatrain_iterations=2')
    assert run_script('main.py', *args).returncode == 0
    evaluate = [*args, '--train=False', '--num_test_tasks=100000']
    code, _, err = interrupt_main(evaluate, 'Evaluating')
    assert code == 130 and err.strip().splitlines() == [
        'interrupted: what was saved is kept; run the same command to go on']
    assert not glob.glob(os.path.join(sine_dir(str(tmp_path)), '*.csv'))


# ------------------------------------------------------ damaged run files
@pytest.mark.parametrize('damage,outcome', [
    ('garbage_lock', 'trains'),
    ('lock_is_a_folder', 'cannot take the lock'),
    ('garbage_settings', 'settings.json is damaged'),
    ('settings_a_list', 'settings.json is damaged'),
])
@pytest.mark.slow
def test_damaged_run_files_are_taken_over_or_named(tmp_path, damage, outcome):
    execute(*sine(tmp_path, '--metatrain_iterations=2'))
    folder = sine_dir(str(tmp_path))
    if damage == 'lock_is_a_folder':
        os.makedirs(os.path.join(folder, run_folder.LOCK_FILE, 'inside'))
    else:
        name, text = {'garbage_lock': (run_folder.LOCK_FILE, '\xff\x00zz'),
                      'garbage_settings': (run_folder.SETTINGS_FILE, '{"datasource": '),
                      'settings_a_list': (run_folder.SETTINGS_FILE, '[1, 2]')}[damage]
        with open(os.path.join(folder, name), 'w') as f:
            f.write(text)
    if outcome == 'trains':
        execute(*sine(tmp_path, '--metatrain_iterations=4'))
        assert run_folder.checkpoints_in(folder)[0][0] == 4
        return
    with pytest.raises(UserError, match=outcome):
        execute(*sine(tmp_path, '--metatrain_iterations=4'))
    assert run_folder.checkpoints_in(folder)[0][0] == 2


@pytest.mark.parametrize('header,message', [
    ('name,class', 'does not start with the header filename,label'),
    ('', 'does not start with the header filename,label'),
])
@pytest.mark.slow
def test_a_split_csv_of_another_format_is_named(tmp_path, header, message):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val',))
    path = os.path.join(source, 'val.csv')
    rows = open(path).read().splitlines()[1:]
    with open(path, 'w') as f:
        f.write('\n'.join([header] + rows if header else []))
    proc = run_script('data/prepare_miniimagenet.py', '--source', source,
                      '--dest', str(tmp_path / 'out'))
    assert message in one_error_line(proc) and 'val.csv' in proc.stderr


SINE_MAML_FOLDER = 'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm'


def wait_for_training(proc, logdir, jobs):
    """Read the reproduction's output until an experiment trains; the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if jobs == 1 and line.startswith('Iteration'):
            return lines
        if jobs > 1 and f'job {jobs} ' in line and 'running' in line:
            break
    logs = [os.path.join(logdir, f'sine_maml{s}', 'job.log') for s in ('', '_seed1')]
    deadline = time.time() + 120
    while time.time() < deadline:
        if all(os.path.exists(p) and 'Iteration' in open(p).read() for p in logs):
            return lines
        time.sleep(0.5)
    raise AssertionError('no experiment started training:\n' + ''.join(lines))


@pytest.mark.slow
@pytest.mark.parametrize('jobs', [1, 2])
def test_ctrl_c_during_reproduce_stops_it_and_keeps_the_saved_training(tmp_path, jobs):
    """One Ctrl-C: the running experiments save and stop, the queued ones never start."""
    cmd = [sys.executable, '-m', 'scripts.reproduce', '--smoke', '--logdir', str(tmp_path),
           '--only', 'sine_maml', '--seeds', '3', '--smoke_iterations', '50000',
           '--jobs', str(jobs)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=with_ctrl_c)
    before = ''.join(wait_for_training(proc, str(tmp_path), jobs))
    os.killpg(proc.pid, signal.SIGINT)        # Ctrl-C reaches the whole process group
    out = before + proc.communicate(timeout=180)[0]
    assert proc.returncode == 130, out
    assert out.rstrip().endswith('interrupted: finished steps are kept; run the same command '
                                 'to go on')
    assert f'job {jobs + 1} sine_maml_seed{jobs}: running' not in out       # never started
    assert not os.path.exists(os.path.join(str(tmp_path), f'sine_maml_seed{jobs}'))
    for name in ['sine_maml', 'sine_maml_seed1'][:jobs]:
        folder = os.path.join(str(tmp_path), name, SINE_MAML_FOLDER)   # the same for each seed
        log = out if jobs == 1 else open(os.path.join(str(tmp_path), name, 'job.log')).read()
        saved = int(re.search(r'Saved after iteration (\d+)', log).group(1))
        assert run_folder.checkpoints_in(folder)[0][0] == saved < 50000


@pytest.mark.slow
@pytest.mark.parametrize('command,message', [
    ('-m scripts.plot_curves /nonexistent --out OUT', 'no "Post-update loss, step 1" summaries'),
    ('-m scripts.plot_sinusoid --maml /nonexistent/model1 --out OUT',
     'checkpoint /nonexistent/model1 is missing or unreadable'),
    ('-m scripts.sinusoid_seeds /nonexistent', 'no test_ubs5_stepsize0.01.csv under /nonexistent'),
    ('-m scripts.keep_latest_checkpoint /nonexistent', 'no model<N> checkpoint in /nonexistent or'),
    ('-m scripts.reproduce --cluster slurm --sbatch bad --only sine_oracle --logdir OUT',
     "argument --sbatch: takes KEY=VALUE (got 'bad')"),
])
def test_the_tools_end_a_user_error_in_one_line(tmp_path, command, message):
    proc = run_script(command.replace('OUT', str(tmp_path / 'out')))
    lines = proc.stderr.strip().splitlines()
    assert message in lines[-1], proc.stderr
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    if tf_quiet.NO_GPU_DRIVER and not message.startswith('argument'):   # argparse shows usage too
        assert len(lines) == 1, proc.stderr      # TensorFlow's start-up lines kept out


# ------------------------------------------------------- third round
@pytest.mark.slow
def test_a_fresh_clones_finished_runs_are_not_evaluated_again(tmp_path):
    """A clone gives every file the same time: the shipped sine_oracle run (checkpoint and
    result) is finished by what its result evaluated, so nothing runs or is overwritten."""
    shutil.copytree(os.path.join(ROOT, 'logs', 'sine_oracle'), tmp_path / 'sine_oracle')
    files = sorted(glob.glob(str(tmp_path / 'sine_oracle' / '**' / '*'), recursive=True))
    for path in files:
        os.utime(path, (1000, 1000))
    before = {p: open(p, 'rb').read() for p in files if os.path.isfile(p)}
    proc = run_script('-m scripts.reproduce', '--only', 'sine_oracle', '--logdir', str(tmp_path),
                      '--data_dir', str(tmp_path / 'no_data'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'job - sine_oracle: done (finished earlier)' in proc.stdout
    assert '$ ' not in proc.stdout                          # no main.py step ran
    assert {p: open(p, 'rb').read() for p in before} == before


@pytest.mark.slow
def test_rerunning_prepare_omniglot_keeps_added_files_and_one_preparation_at_a_time(tmp_path):
    source = synthetic.omniglot_zips(str(tmp_path))
    dest = tmp_path / 'omniglot_resized'
    args = ['--source', source, '--dest', str(dest), '--expect_characters=9',
            '--expect_images=36']
    assert run_script('data/prepare_omniglot.py', *args).returncode == 0
    os.remove(next(dest.glob('*/character01/*.png')))         # damaged: it is rebuilt...
    (dest / 'my_notes.txt').write_text('mine')                 # ...but this is not ours
    line = one_error_line(run_script('data/prepare_omniglot.py', *args))
    assert 'holds 1 files it was not prepared with (my_notes.txt)' in line
    assert (dest / 'my_notes.txt').read_text() == 'mine'
    os.remove(dest / 'my_notes.txt')
    with open(str(dest) + '.lock', 'w') as f:                 # another preparation, running
        f.write(f'{os.getpid()} {utils.process_start(os.getpid())}')
    line = one_error_line(run_script('data/prepare_omniglot.py', *args))
    assert f'process {os.getpid()} is preparing {dest}' in line
    with open(str(dest) + '.lock', 'w') as f:                 # its pid reused by another process
        f.write(f'{os.getpid()} 1')
    proc = run_script('data/prepare_omniglot.py', *args)
    assert proc.returncode == 0 and 'Prepared' in proc.stdout, proc.stderr
    assert not os.path.exists(str(dest) + '.lock')


def test_a_training_lock_whose_pid_was_reused_is_taken_over(tmp_path):
    lock = run_folder.training_lock(str(tmp_path))
    with open(lock.path, 'w') as f:
        f.write(f'{os.getpid()} {utils.process_start(os.getpid())}')
    assert run_folder.training_in(str(tmp_path)) == os.getpid()
    with open(lock.path, 'w') as f:
        f.write(f'{os.getpid()} 1')                           # same pid, another start
    assert run_folder.training_in(str(tmp_path)) is None


@pytest.mark.slow
def test_reproduce_all_refuses_to_run_without_its_environment(tmp_path):
    os.makedirs(tmp_path / 'scripts')
    shutil.copy(os.path.join(ROOT, 'scripts', 'reproduce_all.sh'), tmp_path / 'scripts')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    proc = subprocess.run(['bash', str(tmp_path / 'scripts' / 'reproduce_all.sh')], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith('error: no .venv in ')
    assert len(proc.stderr.strip().splitlines()) == 1
