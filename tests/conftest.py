"""Fixtures the tests share, and TensorFlow's environment as main.py sets it."""
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')   # as main.py runs TensorFlow
# Children write at once, so that one killed from outside still shows what it had printed.
os.environ.setdefault('PYTHONUNBUFFERED', '1')


def main_subprocess(*args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'main.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return proc


@pytest.fixture
def run_main():
    """main.py in a subprocess, as a user runs it: run_main(*args, check=True)."""
    return main_subprocess

