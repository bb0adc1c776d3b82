"""Shared test fixtures and paths (pytest.ini puts the repository root on sys.path)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), 'shared')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')   # as main.py runs TensorFlow

SINE = ['--datasource=sinusoid', '--norm=None', '--update_batch_size=5', '--update_lr=0.01',
        '--meta_batch_size=4']


def run_main(*args, check=True):
    """main.py in a subprocess, as a user runs it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'main.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return proc


def sine_dir(logdir):
    return os.path.join(logdir, 'cls_5.mbs_4.ubs_5.numstep1.updatelr0.01nonorm')
