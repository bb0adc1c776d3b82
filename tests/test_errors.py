"""Bad settings, damaged files and careless relaunches: each ends in one clear line,
and none destroys a checkpoint or a result."""
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import data_generator
import main
import results
import run_folder
import tf_quiet
from config import RunConfig
from data import loading, prepared, synthetic
from tests.helpers import ROOT, SINE, execute, sine, sine_dir
from utils import UserError


def checkpoints(tmp_path):
    return sorted(os.path.basename(p)[:-len('.index')]
                  for p in glob.glob(os.path.join(sine_dir(str(tmp_path)), 'model*.index')))


# ----------------------------------------------------------------- bad settings
@pytest.mark.parametrize('flag,message', [
    ('--update_lr=nan', '--update_lr must be a positive finite number'),
    ('--update_lr=inf', '--update_lr must be a positive finite number'),
    ('--meta_lr=nan', '--meta_lr must be a positive finite number'),
    ('--meta_lr=0', '--meta_lr must be a positive finite number'),
    ('--meta_batch_size=0', '--meta_batch_size must be at least 1'),
    ('--omniglot_split=abc', '--omniglot_split takes two whole numbers'),
    ('--baseline=oracle --datasource=omniglot',
     '--baseline=oracle exists for --datasource=sinusoid only'),
    ('--print_interval=0', '--print_interval must be at least 1'),
    ('--test_iter=-2', '--test_iter must be at least 0, or -1 for the default'),
    ('--seed=-1', '--seed must be between 0 and 2147483647'),
    ('--num_updates=5000', '--num_updates must be between 1 and 1000'),
    ('--test_num_updates=0', '--test_num_updates must be between 1 and 1000'),
    ('--num_test_tasks=1', '--num_test_tasks must be at least 2'),
    ('--num_classes=1 --datasource=omniglot', '--num_classes must be at least 2 for classif'),
    ('--num_classes=1', None),                    # the sinusoid ignores it
    ('--metatrain_iterations=-1', '--metatrain_iterations must be at least 0'),
    ('--intra_op_threads=-1', '--intra_op_threads must be at least 0'),
    ('--train_update_batch_size=0', '--train_update_batch_size must be at least 1, or -1'),
    ('--train_update_lr=0', '--train_update_lr must be a positive finite number'),
    ('--train=False --checkpoint=x', None),
    ('--checkpoint=x', '--checkpoint is for evaluation'),
    ('--train=False --test_iter=5', None),
    ('--train_update_lr=0.1', '--train_update_batch_size / --train_update_lr name the K and'),
    ('--train_update_batch_size=3', '--train_update_batch_size / --train_update_lr name the K'),
    ('--train_update_batch_size=5 --train_update_lr=0.01', None),    # the same as training's
    ('--train=False --train_update_lr=0.1', None),
    ('--test_iter=5', '--test_iter picks the checkpoint to evaluate: it takes --train=False'),
    ('--train=False --checkpoint=x --test_iter=5', '--test_iter picks the checkpoint to eval'),
    ('--train=False --random_init=True --test_iter=5', 'takes --train=False and no --checkp'),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, flag, message):
    """RunConfig.from_args, which the scripts use, checks them as the command line does."""
    if message is None:                  # a good value is let through
        RunConfig.from_args([*sine(tmp_path), *flag.split()])
        return
    with pytest.raises(UserError, match=message.replace('+', r'\+')):
        RunConfig.from_args([*sine(tmp_path), *flag.split()])
    assert not os.path.exists(sine_dir(str(tmp_path)))


@pytest.mark.slow
def test_an_error_is_the_last_and_only_line_on_stderr(tmp_path, run_main):
    proc = run_main('--datasource=omniglot', f'--data_dir={tmp_path}', f'--logdir={tmp_path}',
                    check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: Omniglot data not found')
    if tf_quiet.NO_GPU_DRIVER:      # TensorFlow's CUDA probing is kept out of the way
        assert len(lines) == 1, proc.stderr


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


@pytest.mark.slow
def test_zero_iterations_say_what_happened(tmp_path, capsys):
    execute(*sine(tmp_path, '--metatrain_iterations=0'))
    assert 'Nothing to train: --metatrain_iterations and --pretrain_iterations are both 0' in \
        capsys.readouterr().out


# ------------------------------------------------------------- work not lost
class PoisonedTasks(data_generator.SinusoidTasks):
    """Sinusoid tasks whose a-set labels turn to NaN from the `poison_at`-th batch on
    (labels, not inputs: with oneDNN's kernels a NaN input gave a finite loss for one
    more iteration)."""

    def __init__(self, poison_at):
        super().__init__()
        self.poison_at, self.batches = poison_at, 0

    def sample(self, *args):
        batch = super().sample(*args)
        self.batches += 1
        if self.batches >= self.poison_at:
            batch['labela'] = batch['labela'] * np.nan
        return batch


@pytest.mark.slow
def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_good_checkpoints(tmp_path):
    run = RunConfig.from_args(sine(tmp_path, '--metatrain_iterations=30', '--save_interval=5'))
    os.makedirs(run.exp_dir)
    trainer = main.Trainer(run, PoisonedTasks(poison_at=13))
    with pytest.raises(UserError, match='training diverged at iteration 13: .*the last saved '
                                        'checkpoint is model10'):
        trainer.train()
    assert checkpoints(tmp_path) == ['model10', 'model5']


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
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    execute(*sine(tmp_path, '--metatrain_iterations=10', '--save_interval=5'))
    folder = sine_dir(str(tmp_path))
    data = glob.glob(os.path.join(folder, 'model10.data-*'))[0]
    with open(data, 'r+b') as f:
        f.truncate(10)
    orphan = os.path.join(folder, 'model10.data-00000-of-00001.tempstate123')
    open(orphan, 'w').close()
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--save_interval=5'))
    out = capsys.readouterr().out
    assert 'model10 is unreadable' in out and 'iterations 6..12' in out
    assert not os.path.exists(orphan)


@pytest.mark.slow
def test_evaluations_of_other_splits_task_counts_and_checkpoints_keep_each_result(tmp_path, capsys):
    execute(*sine(tmp_path, '--metatrain_iterations=10', '--save_interval=5'))
    folder = sine_dir(str(tmp_path))
    evaluate = sine(tmp_path, '--metatrain_iterations=10', '--train=False', '--num_test_tasks=4')
    execute(*evaluate)
    execute(*evaluate[:-1], '--num_test_tasks=600', '--test_set=True', '--test_iter=5')
    execute(*evaluate[:-1], '--num_test_tasks=600', '--test_set=True')
    found = sorted(f for f in os.listdir(folder) if f.endswith('.csv'))
    assert found == ['test_ubs5_stepsize0.01.csv', 'test_ubs5_stepsize0.01_model5.csv',
                       'test_ubs5_stepsize0.01_val_4tasks.csv']
    stored = results.read_eval_pickle(os.path.join(folder, 'test_ubs5_stepsize0.01.csv'))
    assert (stored['checkpoint'], stored['split'], stored['num_tasks']) == ('model10', 'test', 600)
    assert 'kept as test_ubs5_stepsize0.01_model5' in capsys.readouterr().out


# ----------------------------------------------------------------- files
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
def test_a_checkpoint_pruned_by_training_before_its_restore_gives_way_to_the_newest(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=4', '--save_interval=2'))
    folder = sine_dir(str(tmp_path))
    run = RunConfig.from_args(sine(tmp_path, '--train=False'))
    main.build_graph(run, data_generator.SinusoidTasks(), 1)
    with main.new_session(run) as sess:     # model6 was the newest when chosen, then pruned
        label, _ = main.restore_for_evaluation(sess, run, os.path.join(folder, 'model6'))
    assert label == 'model4'


@pytest.fixture
def omniglot(tmp_path):
    root = synthetic.omniglot_resized_tree(str(tmp_path), alphabets=2, characters=10)
    return root, os.path.join(root, 'omniglot_resized', 'Alphabet_0', 'character01')


def load(root, split=(5, 5)):
    return loading.load_omniglot(root, ['train', 'val', 'test'], 28, split)


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


@pytest.mark.slow
def test_prepare_omniglot_rebuilds_a_damaged_tree(tmp_path):
    source = synthetic.omniglot_zips(str(tmp_path))
    dest = str(tmp_path / 'omniglot_resized')
    args = [sys.executable, os.path.join(ROOT, 'data', 'prepare_omniglot.py'), '--source', source,
            '--dest', dest, '--expect_characters=9', '--expect_images=36']
    subprocess.run(args, check=True, capture_output=True)
    png = glob.glob(os.path.join(dest, '*', '*', '*.png'))[0]
    open(png, 'wb').write(open(png, 'rb').read()[:20])
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and 'already prepared' not in again.stdout
    assert 'Prepared' in again.stdout


@pytest.mark.slow
def test_prepare_miniimagenet_names_a_damaged_zip_member(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val',))
    with zipfile.ZipFile(os.path.join(source, 'images_val_test.zip'), 'w', zipfile.ZIP_STORED) as z:
        for name in sorted(os.listdir(os.path.join(source, 'images'))):
            z.write(os.path.join(source, 'images', name), 'images/' + name)
    os.rename(os.path.join(source, 'images'), os.path.join(source, 'unused'))
    raw = bytearray(open(os.path.join(source, 'images_val_test.zip'), 'rb').read())
    raw[200] ^= 0xFF                         # inside the first member's data: a CRC error
    open(os.path.join(source, 'images_val_test.zip'), 'wb').write(bytes(raw))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'data', 'prepare_miniimagenet.py'),
                           '--source', source, '--dest', str(tmp_path / 'out')],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith('error: cannot read images/') and 'damaged' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_table_never_labels_a_result_with_the_wrong_task_count(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    os.makedirs(os.path.dirname(path))
    results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4],
                             np.full((100, 11), 0.9), checkpoint='model10', split='test')
    row = next(line for line in make_table.make_table(str(tmp_path)).splitlines()
               if line.startswith('| Omniglot 5-way 1-shot |'))
    assert 'not a 600-task test result' in row and '90.00' not in row


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
