"""scripts/make_table.py: the results table from the evaluation files."""
import os

import numpy as np
import pytest

import results
from tests.helpers import one_error_line, run_script


@pytest.mark.slow
def test_make_table_with_a_missing_logdir_writes_nothing(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('top\n<!-- results: here -->\nold rows\n<!-- /results -->\nend\n')
    proc = run_script('-m scripts.make_table', '--readme', str(readme),
                      '--logdir', str(tmp_path / 'typo'))
    assert 'is not a folder; nothing was written' in one_error_line(proc)
    assert 'old rows' in readme.read_text()
    readme.write_text('no markers here\n')
    proc = run_script('-m scripts.make_table', '--readme', str(readme), '--logdir', str(tmp_path))
    assert 'lacks the results markers' in one_error_line(proc)
    assert readme.read_text() == 'no markers here\n'


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

