"""Constants and small functions the tests share (fixtures are in conftest.py)."""
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import data_generator
from data import loading, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), 'shared')

# Tests of the optional extras: marked `extras` (CI runs them again once it has installed
# the extras), and skipped, saying why, where the extra is not installed.
needs_plots = [pytest.mark.extras, pytest.mark.skipif(
    importlib.util.find_spec('matplotlib') is None,
    reason='the figure scripts need matplotlib: pip install -r requirements-plots.txt')]

SOURCE_CLASSES, PER_CLASS = 30, 18     # the `own` fixture's source: classes, images each
SINE = ['--datasource=sinusoid', '--norm=None', '--update_batch_size=5', '--update_lr=0.01',
        '--meta_batch_size=4']


def sine_dir(logdir):
    """The experiment folder main.py makes for SINE in `logdir`."""
    return os.path.join(logdir, 'cls_5.mbs_4.ubs_5.numstep1.updatelr0.01nonorm')


def random_batch(cfg, rng, tasks=2, examples=4):
    """A batch of random inputs and labels (one-hot for classification) for a ModelConfig."""
    def labels():
        if cfg.loss == 'mse':
            return rng.normal(size=(tasks, examples, cfg.dim_output))
        return np.eye(cfg.dim_output)[rng.integers(0, cfg.dim_output, (tasks, examples))]
    return {'inputa': rng.normal(size=(tasks, examples, cfg.dim_input)), 'labela': labels(),
            'inputb': rng.normal(size=(tasks, examples, cfg.dim_input)), 'labelb': labels()}


def sine(logdir, *args):
    """SINE's flags with a logdir and no summaries, then `args`."""
    return [*SINE, f'--logdir={logdir}', '--log=False', *args]


def execute(*args):
    """main.py's work in this process, from command-line arguments."""
    import main
    from config import RunConfig
    main.execute(RunConfig.from_args(list(args)))


def run_script(path, *args):
    """A script of the repository in a subprocess, as a user runs it from its root:
    run_script('data/prepare_omniglot.py', ...) or run_script('-m scripts.make_table', ...)."""
    return subprocess.run([sys.executable, *path.split(), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))


def checkpoint_values(path):
    """{variable name: value} of every variable in a checkpoint (weights, Adam slots, step)."""
    from tf_quiet import tf
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def with_ctrl_c():
    """A Popen preexec_fn: SIGINT back to its default, as in a terminal. (A test runner
    started in the background inherits SIGINT ignored, and so would the program.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_main(args, when):
    """main.py with `args`, sent Ctrl-C once it prints a line starting with `when`;
    (exit code, stdout after that line, stderr)."""
    proc = subprocess.Popen([sys.executable, 'main.py', *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'), preexec_fn=with_ctrl_c)
    for line in proc.stdout:
        if line.startswith(when):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def one_error_line(proc, code=1):
    """The one line a refused command printed (`error: ...`), checking its exit code."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def prepare_folder(source, dest, *args):
    """data/prepare_folder.py as a user runs it."""
    return run_script('data/prepare_folder.py', '--source', str(source), '--dest', str(dest),
                      *args)


def mounted_tmpfs(folder, options, what):
    """A real tmpfs mounted at `folder` with `options` while the test runs; needs root."""
    folder.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount {what} here ({mounted.stderr.strip()}); run as root')
    yield folder
    subprocess.run(['umount', str(folder)], check=True)



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



def checkpoints(tmp_path):
    return sorted(os.path.basename(p)[:-len('.index')]
                  for p in glob.glob(os.path.join(sine_dir(str(tmp_path)), 'model*.index')))



class PoisonedTasks(data_generator.SinusoidTasks):
    """Sinusoid tasks whose support set labels turn to NaN from the `poison_at`-th batch on
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



def load(root, split=(5, 5)):
    return loading.load_omniglot(root, ['train', 'val', 'test'], 28, split)



def classes_of(dest):
    return {s: loading.sorted_dirs(os.path.join(dest, s))
            for s in ('train', 'val', 'test') if os.path.isdir(os.path.join(dest, s))}



def folder_flags(own, logdir, *extra):
    return ['--datasource=folder', f'--data_dir={own / "prep"}', f'--logdir={logdir}',
            '--meta_batch_size=4', '--update_batch_size=1', '--update_lr=0.1',
            '--num_filters=16', '--metatrain_iterations=150', '--print_interval=50', *extra]



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



REFERENCE = os.path.join(SHARED, 'reference', 'model59000')



MINI_SOURCE = os.path.join(SHARED, 'data', 'miniimagenet')



REFERENCE_RESULT = os.path.join(ROOT, 'logs', 'miniimagenet1shot_reference',
                                'cls_5.mbs_4.ubs_1.numstep5.updatelr0.01hidden32maxpoolbatchnorm',
                                'test_ubs1_stepsize0.01.pkl')



SINE_CHECKPOINT = os.path.join(ROOT, 'logs', 'sine_maml',
                               'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm', 'model70000')



def sine_files(folder, support='x,y\n1,0.8\n2,0.9\n-1,-0.4\n', query='x\n0.5\n1.5\n'):
    (folder / 'points.csv').write_text(support)
    (folder / 'xs.csv').write_text(query)
    return [f'--checkpoint={SINE_CHECKPOINT}', f'--support={folder / "points.csv"}',
            f'--query={folder / "xs.csv"}']



def small_folder(root, per_class=16, **kwargs):
    """A prepared folder of 12 classes at 16x16 (train 8, val 2, test 2)."""
    source = synthetic.class_folders(str(root / 'src'), classes=12, per_class=per_class,
                                     **kwargs)
    proc = prepare_folder(source, root / 'prep', '--image_size=16')
    assert proc.returncode == 0, proc.stderr
    return root / 'prep'



def tiny_run(data, logdir, *extra):
    return ['--datasource=folder', f'--data_dir={data}', f'--logdir={logdir}',
            '--meta_batch_size=2', '--update_batch_size=1', '--num_filters=4',
            '--metatrain_iterations=2', '--save_interval=1', '--log=False', '--num_classes=2',
            *extra]



def fake_pool(num_classes=8, per_class=6, size=4):
    """Every image is filled with one code: 100 * class + drawing (identifiable)."""
    codes = 100 * np.arange(num_classes)[:, None] + np.arange(per_class)[None, :]
    images = np.broadcast_to(codes[:, :, None, None, None], (num_classes, per_class, size, size, 1))
    return images.astype(np.uint16)



def decode(inputs, size=4):
    """Image codes of flattened inputs (the pool's images are constant)."""
    return np.rint(inputs.reshape(len(inputs), -1)[:, 0] * 255).astype(int)

