"""utils.py: the entry points' one-line errors and atomic writes."""
import os

import pytest

import tf_quiet
import utils
from data import synthetic
from tests.helpers import needs_plots, one_error_line, run_script
from utils import UserError


def test_a_failed_write_says_whether_an_older_file_was_kept(tmp_path):
    with pytest.raises(UserError, match=r'cannot write .*/no/r.md \(No such file or directory\); '
                                        r'nothing was written$'):
        utils.write_atomically(str(tmp_path / 'no' / 'r.md'), 'new')
    (tmp_path / 'r.md').write_text('old')
    os.symlink('/dev/full', tmp_path / f'r.md.tmp{os.getpid()}')
    with pytest.raises(UserError, match=r'\(No space left on device\); it was left as it was$'):
        utils.write_atomically(str(tmp_path / 'r.md'), 'new')
    assert (tmp_path / 'r.md').read_text() == 'old'


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
@pytest.mark.parametrize('command,message', [
    pytest.param('-m scripts.plot_curves /nonexistent --out OUT',
                 'no "Post-update loss, step 1" summaries', marks=needs_plots),
    pytest.param('-m scripts.plot_sinusoid --maml /nonexistent/model1 --out OUT',
                 'checkpoint /nonexistent/model1 is missing or unreadable', marks=needs_plots),
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

