"""Fixtures the tests share, and TensorFlow's environment as main.py sets it."""
import os
import subprocess
import sys

import pytest

from data import synthetic
from tests.helpers import (
    PER_CLASS,
    ROOT,
    SOURCE_CLASSES,
    folder_flags,
    mounted_tmpfs,
    prepare_folder,
)

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



@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system."""
    yield from mounted_tmpfs(tmp_path / 'disk', 'size=1m', 'a small tmpfs')



@pytest.fixture
def read_only_disk(tmp_path):
    """A real read-only file system."""
    yield from mounted_tmpfs(tmp_path / 'read_only', 'ro,size=1m', 'a read-only tmpfs')



@pytest.fixture
def omniglot(tmp_path):
    root = synthetic.omniglot_resized_tree(str(tmp_path), alphabets=2, characters=10)
    return root, os.path.join(root, 'omniglot_resized', 'Alphabet_0', 'character01')



@pytest.fixture(scope='session')
def own(tmp_path_factory):
    """A source of 30 colour classes of mixed image sizes and formats, prepared at 28x28."""
    root = tmp_path_factory.mktemp('own')
    source = synthetic.class_folders(str(root / 'src'), classes=SOURCE_CLASSES,
                                     per_class=PER_CLASS)
    proc = prepare_folder(source, root / 'prep', '--image_size=28')
    assert proc.returncode == 0, proc.stderr
    return root



@pytest.fixture(scope='session')
def trained(own, tmp_path_factory):
    """A conv net trained 150 iterations on the prepared folder: (logdir, its checkpoint)."""
    from tests.conftest import main_subprocess
    logdir = tmp_path_factory.mktemp('folder_run')
    proc = main_subprocess(*folder_flags(own, logdir))
    assert 'Finished: 150 iterations' in proc.stdout
    folder = os.path.join(logdir, 'cls_5.mbs_4.ubs_1.numstep1.updatelr0.1hidden16batchnorm')
    return logdir, os.path.join(folder, 'model150')



@pytest.fixture(scope='module')
def omniglot_root(tmp_path_factory):
    return synthetic.omniglot_resized_tree(str(tmp_path_factory.mktemp('omni')))

