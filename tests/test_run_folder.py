"""run_folder.py: what a run keeps on disk (settings, data identity, lock,
checkpoints) and the start checks with their hints."""
import glob
import os
import re
import shutil
import subprocess
import sys
from json import load as json_load

import pytest

import results
import run_folder
import utils
from tests.helpers import (
    SINE,
    checkpoints,
    classes_of,
    execute,
    fill,
    one_error_line,
    prepare_folder,
    run_script,
    sine,
    sine_dir,
    small_folder,
    tiny_run,
)
from utils import UserError


def test_a_fresh_start_is_refused_where_an_earlier_run_saved_checkpoints(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=2', '--resume=False'))  # nothing there yet
    folder = sine_dir(str(tmp_path))
    with pytest.raises(UserError, match=r'--resume=False starts afresh, but .* holds model2 of '
                                        r'an earlier run; move that folder away'):
        execute(*sine(tmp_path, '--metatrain_iterations=3', '--resume=False'))
    assert [n for n, _ in run_folder.checkpoints_in(folder)] == [2]


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


@pytest.mark.slow
def test_a_full_disk_at_start_asks_for_space(small_disk):
    os.makedirs(os.path.join(small_disk, 'logs'))
    fill(small_disk, leave=0)
    proc = run_script('main.py', *SINE, f'--logdir={small_disk}/logs', '--metatrain_iterations=2')
    assert one_error_line(proc).endswith(
        '(No space left on device); free some space or choose another --logdir')


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


def test_a_training_lock_whose_pid_was_reused_is_taken_over(tmp_path):
    lock = run_folder.training_lock(str(tmp_path))
    with open(lock.path, 'w') as f:
        f.write(f'{os.getpid()} {utils.process_start(os.getpid())}')
    assert run_folder.training_in(str(tmp_path)) == os.getpid()
    with open(lock.path, 'w') as f:
        f.write(f'{os.getpid()} 1')                           # same pid, another start
    assert run_folder.training_in(str(tmp_path)) is None


@pytest.mark.slow
def test_a_run_refuses_to_continue_with_other_settings(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=5'))
    with pytest.raises(UserError, match=r'was trained with --meta_lr=0.001 \(now 0.01\), '
                                        r'--seed=0 \(now 2\)'):
        execute(*sine(tmp_path, '--metatrain_iterations=10', '--seed=2', '--meta_lr=0.01'))
    execute(*sine(tmp_path, '--metatrain_iterations=8'))      # more iterations: the same run
    assert checkpoints(tmp_path) == ['model5', 'model8']


@pytest.mark.slow
def test_a_live_lock_stops_a_second_trainer_and_a_stale_one_does_not(tmp_path):
    folder = sine_dir(str(tmp_path))
    os.makedirs(folder)
    with open(os.path.join(folder, run_folder.LOCK_FILE), 'w') as f:
        f.write(str(os.getppid()))          # a process that is running
    with pytest.raises(UserError, match=f'process {os.getppid()} is training'):
        execute(*sine(tmp_path, '--metatrain_iterations=3'))
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    with open(os.path.join(folder, run_folder.LOCK_FILE), 'w') as f:
        f.write(str(dead.pid))              # left by a killed process
    execute(*sine(tmp_path, '--metatrain_iterations=3'))
    assert checkpoints(tmp_path) == ['model3']
    assert not os.path.exists(os.path.join(folder, run_folder.LOCK_FILE))


@pytest.mark.slow
def test_logdir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'afile'
    path.write_text('x')
    with pytest.raises(UserError, match='cannot write to') as refused:
        execute(*SINE, f'--logdir={path}', '--metatrain_iterations=2')
    assert str(refused.value).endswith('(Not a directory); choose another --logdir')


@pytest.mark.slow
def test_checkpoint_given_as_folder_file_or_damaged(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=4', '--save_interval=2'))
    folder = sine_dir(str(tmp_path))
    evaluate = sine(tmp_path, '--train=False', '--num_test_tasks=2')
    execute(*evaluate, f'--checkpoint={folder}')                      # its latest
    execute(*evaluate, f'--checkpoint={folder}/model2.index')
    assert results.read_eval_pickle(os.path.join(folder, 'test_ubs5_stepsize0.01_val_2tasks.csv'))[
        'checkpoint'] == 'model2'
    with pytest.raises(UserError, match=r'a folder without model<N> checkpoints; it is a '
                                        r'--logdir; give its experiment folder '
                                        rf'--checkpoint={re.escape(folder)}$'):
        execute(*evaluate, f'--checkpoint={tmp_path}')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match=r'without model<N> checkpoints; give a run\'s experiment '
                                        r'folder \(the one holding settings.json\)'):
        execute(*evaluate, f'--checkpoint={tmp_path / "empty"}')
    shutil.copytree(folder, tmp_path / 'other')
    with pytest.raises(UserError, match=r'give one of its experiment folders: '
                                        rf'{re.escape(folder)}, {re.escape(str(tmp_path))}/other$'):
        execute(*evaluate, f'--checkpoint={tmp_path}')
    with open(glob.glob(os.path.join(folder, 'model4.data-*'))[0], 'r+b') as f:
        f.truncate(10)
    with pytest.raises(UserError, match='model4 is unreadable'):
        execute(*evaluate, f'--checkpoint={folder}/model4')
    with pytest.raises(UserError, match=r'model4 is unreadable .*; evaluate the one before with '
                                        r'--test_iter=2 \(or --checkpoint=.*model2\)'):
        execute(*evaluate)


@pytest.mark.slow
def test_evaluating_with_other_settings_than_training_names_the_flags(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=2'))              # trained at K=5
    with pytest.raises(UserError, match=r"holds this logdir's run trained with update_batch_size "
                                        r'5 \(now 10\): evaluate it with '
                                        r'--train_update_batch_size=5, or train this run first'):
        execute(*sine(tmp_path, '--metatrain_iterations=2', '--train=False',
                      '--update_batch_size=10'))
    with pytest.raises(UserError, match=r'trained with num_updates 1 \(now 5\), update_lr 0.01 '
                                        r'\(now 0.1\): evaluate it with --num_updates=1 '
                                        r'--train_update_lr=0.01,'):
        execute(*sine(tmp_path, '--train=False', '--num_updates=5', '--update_lr=0.1'))
    with pytest.raises(UserError, match=': train first'):   # too unlike to be the one meant
        execute(*sine(tmp_path, '--train=False', '--update_batch_size=10', '--meta_lr=0.1',
                      '--num_updates=5', '--meta_batch_size=2'))


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
    assert prepare_folder(tmp_path / 'src', data, '--image_size=16').returncode == 0
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
def test_advice_names_only_flags_and_causes_that_exist(tmp_path, run_main):
    """Resuming on data of another image size names the images, not an --image_size flag
    of main.py; a grayscale checkpoint evaluated on colour data blames the channels, not
    --num_filters; K=1 is not told to lower K."""
    data = small_folder(tmp_path / 'gray', colour=False)
    run_main(*tiny_run(data, tmp_path / 'logs'))
    big = prepare_folder(tmp_path / 'gray' / 'src', tmp_path / 'big', '--image_size=20')
    assert big.returncode == 0
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
    assert 'a task needs 16 per class (K=1 + 15 query examples): add images to it' in line
    assert 'lower --update_batch_size' not in line

