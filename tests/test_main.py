"""main.py on sinusoid and tiny synthetic Omniglot: resume, errors, outputs. Its work runs
in this process (main.execute, as the command runs it); what only the command line shows
(exit codes, stderr, --help, Ctrl-C) runs main.py in a subprocess."""
import csv
import glob
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

import data_generator
import main
import run_folder
import tf_quiet
from config import RunConfig
from data import synthetic
from tests.helpers import (
    ROOT,
    SINE,
    PoisonedTasks,
    checkpoint_values,
    checkpoints,
    execute,
    fill,
    folder_flags,
    interrupt_main,
    one_error_line,
    prepare_folder,
    run_script,
    sine,
    sine_dir,
    tiny_run,
)
from tf_quiet import tf
from utils import UserError


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights_and_adam_slots(tmp_path, capsys):
    straight, split = str(tmp_path / 'straight'), str(tmp_path / 'split')
    execute(*sine(straight, '--metatrain_iterations=40', '--save_interval=20'))
    first = str(tmp_path / 'first')
    execute(*sine(first, '--metatrain_iterations=20', '--save_interval=20'))
    shutil.move(first, split)   # a committed run is resumed from another path
    capsys.readouterr()
    execute(*sine(split, '--metatrain_iterations=40', '--save_interval=20'))
    assert 'iterations 21..40' in capsys.readouterr().out
    a = checkpoint_values(os.path.join(sine_dir(straight), 'model40'))
    b = checkpoint_values(os.path.join(sine_dir(split), 'model40'))
    assert set(a) == set(b)
    assert any(name.endswith('/Adam') for name in a) and 'global_step' in a
    assert a['global_step'] == 40
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_relaunching_a_finished_run_says_so(tmp_path, capsys):
    args = sine(tmp_path, '--metatrain_iterations=10', '--save_interval=4')
    execute(*args)
    assert sorted(f for f in os.listdir(sine_dir(str(tmp_path))) if f.endswith('.index')) == [
        'model10.index', 'model4.index', 'model8.index']
    capsys.readouterr()
    execute(*args)
    assert 'Nothing to train' in capsys.readouterr().out
    execute(*sine(tmp_path / 'zero', '--metatrain_iterations=0'))
    assert 'Nothing to train' in capsys.readouterr().out


@pytest.mark.slow
def test_training_keeps_the_newest_three_checkpoints_and_every_milestone(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(run_folder, 'MILESTONE_INTERVAL', 4)
    folder = sine_dir(str(tmp_path))

    def kept():
        return [n for n, _ in sorted((int(f[5:-6]), f) for f in os.listdir(folder)
                                     if f.endswith('.index'))]
    execute(*sine(tmp_path, '--metatrain_iterations=14', '--save_interval=2'))
    assert kept() == [4, 6, 8, 10, 12, 14]                     # model2 pruned
    execute(*sine(tmp_path, '--metatrain_iterations=22', '--save_interval=2'))   # resumed
    assert kept() == [4, 8, 12, 14, 16, 18, 20, 22]             # model6 and 10 pruned


def test_pruned_run_keeps_only_the_latest_checkpoint_and_resumes(tmp_path, capsys):
    from scripts import keep_latest_checkpoint
    execute(*sine(tmp_path, '--metatrain_iterations=10', '--save_interval=4'))
    folder = sine_dir(str(tmp_path))
    keep, deleted = keep_latest_checkpoint.keep_latest(folder)
    assert keep == 'model10' and len(deleted) == 4          # model4, model8: .index and .data
    assert sorted(f for f in os.listdir(folder) if f.startswith('model')) == [
        'model10.data-00000-of-00001', 'model10.index']
    assert tf.train.get_checkpoint_state(folder).all_model_checkpoint_paths == [
        os.path.join(folder, 'model10')]
    capsys.readouterr()
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--save_interval=4'))
    assert 'iterations 11..12' in capsys.readouterr().out
    os.remove(os.path.join(folder, 'model12.index'))       # an incomplete newest one goes too
    assert keep_latest_checkpoint.keep_latest(folder) == (
        'model10', ['model12.data-00000-of-00001'])
    with pytest.raises(UserError, match='no model<N> checkpoint in'):
        keep_latest_checkpoint.keep_latest(str(tmp_path))
    execute(*sine(tmp_path, '--metatrain_iterations=16', '--save_interval=4'))
    capsys.readouterr()
    keep_latest_checkpoint.main([str(tmp_path)])       # the --logdir: the folder inside it
    assert capsys.readouterr().out == f'{folder}: kept model16, deleted 4 files\n'
    with pytest.raises(SystemExit, match='no model<N> checkpoint in .* or the folders in it'):
        keep_latest_checkpoint.main([str(tmp_path / 'empty')])


@pytest.mark.slow
def test_pruning_keeps_the_newest_readable_checkpoint_and_leaves_a_trained_folder(tmp_path):
    from scripts import keep_latest_checkpoint
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--save_interval=4'))
    folder = sine_dir(str(tmp_path))
    with open(glob.glob(os.path.join(folder, 'model12.data-*'))[0], 'r+b') as f:
        f.truncate(10)                                  # the newest is damaged
    with open(os.path.join(folder, 'train.lock'), 'w') as f:
        f.write(str(os.getpid()))                       # a live process trains the folder
    with pytest.raises(UserError, match=f'process {os.getpid()} is training'):
        keep_latest_checkpoint.keep_latest(folder)
    assert len(glob.glob(os.path.join(folder, 'model*.index'))) == 3
    os.remove(os.path.join(folder, 'train.lock'))
    keep, _ = keep_latest_checkpoint.keep_latest(folder)
    assert keep == 'model8'
    assert sorted(glob.glob(os.path.join(folder, 'model*'))) == [
        os.path.join(folder, n) for n in ('model8.data-00000-of-00001', 'model8.index')]
    execute(*sine(tmp_path, '--metatrain_iterations=12', '--save_interval=4'))   # resumes
    assert os.path.exists(os.path.join(folder, 'model12.index'))


@pytest.mark.slow
def test_evaluation_without_checkpoint_is_one_line_error(tmp_path, run_main):
    proc = run_main(*SINE, f'--logdir={tmp_path}', '--train=False', check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith('error: no checkpoint in')
    assert 'Traceback' not in proc.stderr
    with pytest.raises(UserError, match='model5 not found'):
        execute(*sine(tmp_path, '--train=False', '--test_iter=5'))


@pytest.mark.parametrize('flag,message', [('--norm=batchnorm', 'norm'),
                                          ('--datasource=cifar', 'datasource'),
                                          ('--meta_batch_size=0', 'meta_batch_size')])
@pytest.mark.slow
def test_bad_flag_values_are_clear_errors(tmp_path, flag, message, run_main):
    proc = run_main(f'--logdir={tmp_path}', flag, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_evaluation_writes_reference_csv_and_pickle(tmp_path, capsys):
    execute(*SINE, f'--logdir={tmp_path}', '--metatrain_iterations=5')
    execute(*SINE, f'--logdir={tmp_path}', '--metatrain_iterations=5', '--train=False',
            '--num_test_tasks=7', '--update_batch_size=10', '--train_update_batch_size=5')
    folder = sine_dir(str(tmp_path))
    with open(os.path.join(folder, 'test_ubs10_stepsize0.01_val_7tasks.csv')) as f:
        rows = list(csv.reader(f))
    assert rows[0] == [f'update{i}' for i in range(11)]
    assert len(rows) == 4 and all(len(r) == 11 for r in rows)
    with open(os.path.join(folder, 'test_ubs10_stepsize0.01_val_7tasks.pkl'), 'rb') as f:
        results = pickle.load(f)
    mses = results['mses']
    assert mses.shape == (7, 11)
    assert results['checkpoint'] == 'model5'   # what the table reports as iterations
    np.testing.assert_allclose([float(v) for v in rows[1]], mses.mean(0), rtol=1e-6)
    np.testing.assert_allclose([float(v) for v in rows[3]], 1.96 * mses.std(0) / np.sqrt(7),
                               rtol=1e-6)
    assert 'step 10: MSE' in capsys.readouterr().out
    # TensorBoard: before adaptation, after training's 1 step and after the last, at model5
    events = glob.glob(os.path.join(folder, 'test_ubs10_stepsize0.01_val_7tasks', 'events.*'))
    points = {(v.tag, e.step): v.simple_value for path in events
              for e in tf.train.summary_iterator(path) for v in e.summary.value}
    assert sorted(points) == [(f'Evaluation/val MSE, step {j}', 5) for j in (0, 1, 10)]
    for j in (0, 1, 10):
        assert points[(f'Evaluation/val MSE, step {j}', 5)] == pytest.approx(mses[:, j].mean())


@pytest.mark.slow
def test_interrupted_run_saves_and_resumes(tmp_path):
    code, out, _ = interrupt_main([*SINE, f'--logdir={tmp_path}', '--metatrain_iterations=1000000',
                                   '--print_interval=50'], 'Iteration')
    assert code == 130
    state = tf.train.get_checkpoint_state(sine_dir(str(tmp_path)))
    done = int(tf.train.load_checkpoint(state.model_checkpoint_path).get_tensor('global_step'))
    assert done >= 50 and state.model_checkpoint_path.endswith(f'model{done}')
    assert f'Saved after iteration {done}' in out


@pytest.fixture(scope='module')
def omniglot_data(tmp_path_factory):
    return synthetic.omniglot_resized_tree(str(tmp_path_factory.mktemp('omni')), characters=20)


OMNI = ['--datasource=omniglot', '--omniglot_split=20,20', '--num_filters=8', '--update_lr=0.4']


@pytest.mark.slow
def test_short_omniglot_training_lowers_the_loss(tmp_path, omniglot_data, capsys):
    execute(*OMNI, f'--data_dir={omniglot_data}', f'--logdir={tmp_path}', '--meta_batch_size=4',
            '--update_batch_size=1', '--metatrain_iterations=90', '--print_interval=30',
            '--meta_lr=0.01')
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith('Iteration')]
    post_losses = [float(line.split(' -> ')[1].split(',')[0]) for line in lines]
    post_accuracies = [float(line.split(' -> ')[2].split(' ')[0]) for line in lines]
    assert len(lines) == 3
    assert post_losses[-1] < 0.7 * post_losses[0], out
    assert post_accuracies[-1] > 0.5, out
    assert 'validation accuracy' not in out   # every 5 prints only
    execute(*OMNI, f'--data_dir={omniglot_data}', f'--logdir={tmp_path}', '--meta_batch_size=4',
            '--update_batch_size=1', '--train=False', '--meta_lr=0.01', '--test_set=True',
            '--num_test_tasks=20')
    assert 'step 10: accuracy' in capsys.readouterr().out


@pytest.mark.slow
def test_omniglot_20_way_5_shot_runs(tmp_path, omniglot_data, capsys):
    execute(*OMNI, f'--data_dir={omniglot_data}', f'--logdir={tmp_path}', '--num_classes=20',
            '--meta_batch_size=2', '--update_batch_size=5', '--num_updates=2',
            '--metatrain_iterations=1')
    assert 'Finished: 1 iterations' in capsys.readouterr().out


def test_experiment_names_are_the_originals():
    def name(*args):
        return RunConfig.from_args(list(args)).exp_name
    sine = [*SINE[:2], '--update_batch_size=10', '--update_lr=0.01', '--meta_batch_size=25']
    assert name(*sine) == 'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm'
    assert name('--meta_batch_size=32', '--update_batch_size=1', '--update_lr=0.4') == \
        'cls_5.mbs_32.ubs_1.numstep1.updatelr0.4batchnorm'
    mini = ['--meta_batch_size=4', '--update_batch_size=1', '--num_updates=5', '--update_lr=0.01',
            '--num_filters=32', '--max_pool=True']
    assert name(*mini) == 'cls_5.mbs_4.ubs_1.numstep5.updatelr0.01hidden32maxpoolbatchnorm'
    assert name(*mini, '--update_batch_size=5', '--stop_grad=True', '--norm=layer_norm') == \
        'cls_5.mbs_4.ubs_5.numstep5.updatelr0.01hidden32maxpoolstopgradlayernorm'
    assert name('--baseline=oracle', '--norm=None').endswith('updatelr0.001oraclenonorm')
    # evaluation with another K and alpha names the training folder
    assert name('--train=False', '--update_batch_size=5', '--train_update_batch_size=1',
                '--update_lr=0.4', '--train_update_lr=0.1').startswith(
        'cls_5.mbs_25.ubs_1.numstep1.updatelr0.1')


def max_pools_run(trainer, itr, summarize):
    """How many max-pool forward ops ran in one traced training step (TensorFlow's
    own kernel is MaxPool, oneDNN's _MklNativeMaxPool)."""
    metadata = tf.RunMetadata()
    trainer.step(itr, summarize, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                 run_metadata=metadata)
    ops = [node.timeline_label.split(' = ')[1].split('(')[0]
           for device in metadata.step_stats.dev_stats for node in device.node_stats
           if ' = ' in node.timeline_label]
    return sum(op.endswith('MaxPool') for op in ops)


@pytest.mark.slow
def test_training_step_runs_only_the_forward_passes_the_meta_gradient_needs(tmp_path):
    """Per task the meta-gradient needs one support set forward pass per inner step and one
    query set pass after the last step: with 4 max-pooled layers, 3 tasks and 2 steps,
    3 * (2 + 1) * 4 = 36 MaxPool ops. Summary iterations add the query set passes before
    and after step 1: 3 * (2 + 3) * 4 = 60."""
    run = RunConfig.from_args(['--datasource=miniimagenet', '--num_filters=2', '--max_pool=True',
                               '--num_updates=2', '--meta_batch_size=3', '--update_batch_size=1',
                               '--update_lr=0.01', '--log=False', f'--logdir={tmp_path}'])
    images = np.random.default_rng(0).integers(0, 256, (6, 20, 84, 84, 3), dtype=np.uint8)
    tasks = data_generator.ImageTasks({'train': images}, 5, rotate=False, invert=False)
    trainer = main.Trainer(run, tasks)
    trainer.restore_or_init()
    assert max_pools_run(trainer, 0, summarize=False) == 36
    assert max_pools_run(trainer, 1, summarize=True) == 60


def sine_trainer(tmp_path, *args):
    run = RunConfig.from_args([*SINE, '--log=False', f'--logdir={tmp_path}', *args])
    trainer = main.Trainer(run, data_generator.SinusoidTasks())
    trainer.restore_or_init()
    return trainer


@pytest.mark.slow
def test_meta_update_is_adam_on_the_query_loss_after_num_updates_steps(tmp_path):
    """Adam's first step moves each weight by lr * g / (|g| + eps / sqrt(1 - beta2))."""
    trainer = sine_trainer(tmp_path, '--num_updates=2', '--meta_lr=0.003')
    graph, sess = trainer.graph, trainer.sess
    variables = tf.trainable_variables('model/')
    feed = graph.feed(trainer.batch(0))
    before = sess.run(variables)
    grads = {j: sess.run(tf.gradients(graph.meta_losses[j], variables), feed) for j in (0, 2)}
    trainer.step(0)
    moved = [a - b for a, b in zip(sess.run(variables), before)]
    for j, want in ((2, True), (0, False)):
        expected = [-0.003 * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999)) for g in grads[j]]
        close = all(np.allclose(m, e, rtol=1e-4, atol=1e-9) for m, e in zip(moved, expected))
        assert close == want, j


@pytest.mark.slow
def test_meta_gradients_are_clipped_to_10_for_miniimagenet_only(tmp_path):
    images = np.zeros((6, 20, 84, 84, 3), np.uint8)
    mini = RunConfig.from_args(['--datasource=miniimagenet', '--num_filters=2', '--max_pool=True',
                                '--log=False', f'--logdir={tmp_path}'])
    main.Trainer(mini, data_generator.ImageTasks({'train': images}, 5, False, False))
    def clip_bounds():
        """The constants of the min/max pairs that tf.clip_by_value builds."""
        ops = [op for op in tf.get_default_graph().get_operations()
               if 'clip_by_value' in op.name and op.type in ('Minimum', 'Maximum')]
        return ops, {(op.type, float(tf.get_static_value(op.inputs[1]))) for op in ops}
    ops, bounds = clip_bounds()
    assert len(ops) == 2 * len(tf.trainable_variables('model/'))
    assert bounds == {('Minimum', 10.0), ('Maximum', -10.0)}
    omniglot = RunConfig.from_args(['--datasource=omniglot', '--num_filters=2', '--log=False',
                                    f'--logdir={tmp_path}'])
    small = np.zeros((6, 20, 28, 28, 1), np.uint8)
    main.Trainer(omniglot, data_generator.ImageTasks({'train': small}, 5, True, True))
    assert clip_bounds()[0] == []


@pytest.mark.parametrize('datasource,train_query,eval_query', [
    ('miniimagenet', 15, 2), ('omniglot', 2, 2)])
def test_query_examples_per_class_in_training_and_evaluation(tmp_path, datasource, train_query,
                                                            eval_query):
    run = RunConfig.from_args([f'--datasource={datasource}', '--update_batch_size=2',
                               '--meta_batch_size=3', f'--logdir={tmp_path}'])
    assert run.query_shots(training=True) == train_query
    assert run.query_shots(training=False) == eval_query
    size, channels = run.source.img_size, run.source.channels
    tasks = data_generator.ImageTasks({'train': np.zeros((6, 20, size, size, channels), np.uint8)},
                                      5, False, False)
    batch = main.training_batch(run, tasks, 0)
    assert batch['inputa'].shape[:2] == (3, 5 * 2)
    assert batch['inputb'].shape[:2] == (3, 5 * train_query)


@pytest.mark.slow
def test_evaluation_tasks_do_not_depend_on_the_training_seed(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=2'))
    args = sine(tmp_path, '--metatrain_iterations=2', '--train=False', '--test_set=True',
                '--num_test_tasks=6')
    execute(*args)
    path = os.path.join(sine_dir(str(tmp_path)), 'test_ubs5_stepsize0.01_6tasks.pkl')
    first = pickle.load(open(path, 'rb'))['mses']
    execute(*args, '--seed=5')
    np.testing.assert_array_equal(pickle.load(open(path, 'rb'))['mses'], first)
    assert first.shape == (6, 11)                       # 10 evaluation steps by default


@pytest.mark.slow
def test_help_lists_the_originals_flags(run_main):
    out = run_main('--help', check=False).stdout   # absl exits 1 after --help
    for flag in ('datasource', 'num_classes', 'baseline', 'pretrain_iterations',
                 'metatrain_iterations', 'meta_batch_size', 'meta_lr', 'update_batch_size',
                 'update_lr', 'num_updates', 'norm', 'num_filters', 'conv', 'max_pool',
                 'stop_grad', 'log', 'logdir', 'resume', 'train', 'test_iter', 'test_set',
                 'train_update_batch_size', 'train_update_lr', 'seed'):
        assert f'--{flag}:' in out or f'--[no]{flag}:' in out, flag


@pytest.mark.slow
def test_importing_main_only_imports():
    """No environment variable, flag or TensorFlow import (nor the hiding of its start-up
    lines) at import time: main() and execute() do those."""
    code = ('import os, sys; before = dict(os.environ); import main; from absl import flags; '
            'assert dict(os.environ) == before, "environment changed"; '
            'assert "tensorflow" not in sys.modules, "TensorFlow imported"; '
            'assert "datasource" not in flags.FLAGS, "flags defined"')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if not k.startswith('TF_')})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_random_init_evaluates_the_fresh_initialisation_training_starts_from(tmp_path):
    args = sine(tmp_path, '--train=False', '--test_set=True', '--num_test_tasks=5',
                '--random_init=True')
    execute(*args)                                  # no checkpoint needed
    path = os.path.join(sine_dir(str(tmp_path)), 'test_ubs5_stepsize0.01_5tasks_randominit.pkl')
    with open(path, 'rb') as f:
        first = pickle.load(f)
    assert first['checkpoint'] == 'seed0' and first['mses'].shape == (5, 11)
    assert not np.allclose(first['mses'][:, 10], first['mses'][:, 0])   # the inner loop ran
    execute(*args)
    np.testing.assert_array_equal(pickle.load(open(path, 'rb'))['mses'], first['mses'])
    execute(*args, '--seed=3')
    assert not np.array_equal(pickle.load(open(path, 'rb'))['mses'], first['mses'])
    assert os.path.exists(path[:-len('.pkl')] + '_seed0.csv')     # seed 0's result kept aside
    # the weights evaluated are those a training run with the same seed starts from
    run = RunConfig.from_args(args)
    tasks = data_generator.SinusoidTasks()
    main.build_graph(run, tasks, 1)
    with main.new_session(run) as sess:
        main.restore_for_evaluation(sess, run, None)
        evaluated = sess.run(tf.trainable_variables('model/'))
    trainer = main.Trainer(RunConfig.from_args(sine(tmp_path / 'train')), tasks)
    trainer.restore_or_init()
    for a, b in zip(evaluated, trainer.sess.run(tf.trainable_variables('model/'))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('extra', [['--train=True'], ['--train=False', '--checkpoint=x/model5']])
def test_random_init_takes_no_training_and_no_checkpoint(tmp_path, extra):
    with pytest.raises(UserError, match='--random_init=True evaluates a fresh initialisation'):
        RunConfig.from_args(sine(tmp_path, '--random_init=True', *extra))


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


@pytest.mark.slow
def test_an_error_is_the_last_and_only_line_on_stderr(tmp_path, run_main):
    proc = run_main('--datasource=omniglot', f'--data_dir={tmp_path}', f'--logdir={tmp_path}',
                    check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: Omniglot data not found')
    if tf_quiet.NO_GPU_DRIVER:      # TensorFlow's CUDA probing is kept out of the way
        assert len(lines) == 1, proc.stderr


@pytest.mark.slow
def test_zero_iterations_say_what_happened(tmp_path, capsys):
    execute(*sine(tmp_path, '--metatrain_iterations=0'))
    assert 'Nothing to train: --metatrain_iterations and --pretrain_iterations are both 0' in \
        capsys.readouterr().out


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
def test_a_checkpoint_pruned_by_training_before_its_restore_gives_way_to_the_newest(tmp_path):
    execute(*sine(tmp_path, '--metatrain_iterations=4', '--save_interval=2'))
    folder = sine_dir(str(tmp_path))
    run = RunConfig.from_args(sine(tmp_path, '--train=False'))
    main.build_graph(run, data_generator.SinusoidTasks(), 1)
    with main.new_session(run) as sess:     # model6 was the newest when chosen, then pruned
        label, _ = main.restore_for_evaluation(sess, run, os.path.join(folder, 'model6'))
    assert label == 'model4'


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
def test_images_too_small_for_max_pool_are_refused_naming_the_smallest_size(tmp_path, run_main):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=12, per_class=16)
    assert prepare_folder(source, tmp_path / 'prep', '--image_size=12').returncode == 0
    line = one_error_line(run_main(*tiny_run(tmp_path / 'prep', tmp_path / 'logs',
                                             '--max_pool=True'), check=False))
    assert 'images of 12x12 are too small for --max_pool=True' in line
    assert '--image_size 16 or more' in line

