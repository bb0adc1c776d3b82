"""The reproduction script end to end in smoke mode, and the table it writes."""
import os
import subprocess

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_smoke_reproduction_trains_evaluates_and_tabulates(tmp_path):
    logdir = str(tmp_path / 'smoke')
    cmd = ['bash', os.path.join(ROOT, 'scripts', 'reproduce_all.sh'), '--smoke', '--logdir', logdir,
           '--only', 'sine_maml,omniglot5way', '--seeds', '2']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(logdir, 'results.md')) as f:
        table = f.read()
    rows = {line.split(' | ')[0].lstrip('| '): line for line in table.splitlines()[2:]}
    sine = rows['Sinusoid K=5, MAML, MSE after 1 step'].split(' | ')
    assert '(sd over 2 seeds)' in sine[2]                                 # seeds 0 and 1 trained
    assert os.path.isdir(os.path.join(logdir, 'sine_maml_seed1'))
    assert 'not yet run' not in rows['Omniglot 5-way 5-shot (trained at K=1)']
    assert rows['Omniglot 5-way 1-shot'].split(' | ')[4] == '10'          # iterations trained
    assert 'not yet run' in rows['Omniglot 20-way 1-shot']     # never filled from the paper
    # a second run skips finished training and up-to-date evaluations
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert again.returncode == 0
    assert again.stdout.count('Nothing to train') == 3
    assert again.stdout.count('is up to date') == 4
