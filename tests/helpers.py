"""Constants and small functions the tests share (fixtures are in conftest.py)."""
import os
import signal
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), 'shared')

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
