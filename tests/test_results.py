"""results.py: evaluation result files, written whole, read back checked."""
import os

import numpy as np
import pytest

import results
from tests.helpers import execute, sine, sine_dir
from utils import UserError


def test_a_full_disk_while_writing_a_result_leaves_the_previous_pair_whole(tmp_path):
    folder = str(tmp_path)
    name = 'test_ubs5_stepsize0.01'
    results.write_eval_results(folder, name, np.full((3, 2), 0.5), checkpoint='model1')
    before = {f: open(os.path.join(folder, f), 'rb').read() for f in os.listdir(folder)}
    os.symlink('/dev/full', os.path.join(folder, f'test_ubs5_stepsize0.01.pkl.tmp{os.getpid()}'))
    with pytest.raises(UserError, match='cannot write .*test_ubs5_stepsize0.01.pkl .No space left'):
        results.write_eval_results(folder, name, np.full((3, 2), 0.9), checkpoint='model1')
    assert {f: open(os.path.join(folder, f), 'rb').read() for f in os.listdir(folder)} == before


@pytest.mark.parametrize('damage', ['no_pkl', 'empty_pkl', 'garbage_pkl', 'short_csv'])
def test_half_a_result_is_not_up_to_date_and_the_table_names_it(tmp_path, damage):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    os.makedirs(os.path.dirname(path))
    results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4],
                             np.full((600, 11), 0.9), checkpoint='model10', split='test')
    assert results.result_of(path, 'model10')
    pkl = path[:-4] + '.pkl'
    if damage == 'no_pkl':
        os.remove(pkl)
    else:
        target, text = {'empty_pkl': (pkl, b''), 'garbage_pkl': (pkl, b'\x80\x04garbage'),
                        'short_csv': (path, b'update0\r\n0.5\r\n')}[damage]
        with open(target, 'wb') as f:
            f.write(text)
    assert not results.result_of(path, 'model10')
    named = os.path.basename(pkl if damage == 'no_pkl' else target)
    with pytest.raises(UserError, match=f'{named} is missing or damaged'):
        make_table.make_table(str(tmp_path))


def test_a_hand_edited_result_mean_is_refused_not_printed(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    os.makedirs(os.path.dirname(path))
    values = np.random.default_rng(0).random((600, 11))
    results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4], values,
                             checkpoint='model10', split='test')
    assert '| Omniglot 5-way 1-shot | 98.70 +- 0.40 |' in make_table.make_table(str(tmp_path))
    with open(path) as f:
        rows = f.read().splitlines()
    means = rows[1].split(',')
    means[3] = '0.999'                               # the step the table reports
    with open(path, 'w') as f:
        f.write('\n'.join([rows[0], ','.join(means), *rows[2:]]) + '\n')
    with pytest.raises(UserError, match='disagrees with the per-task values in '
                                        'test_ubs1_stepsize0.4.pkl'):
        make_table.make_table(str(tmp_path))
    assert not results.result_of(path, 'model10')


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


def test_an_evaluation_with_diverging_tasks_prints_the_median_beside_the_mean():
    mses = np.full((5, 3), 0.2)
    mses[:, 1] = [0.1, 0.2, 0.3, 0.4, 0.5]
    plain = results.eval_table(mses, 'MSE')
    assert plain == ['  step  0: MSE 0.2000 +- 0.0000', '  step  1: MSE 0.3000 +- 0.1240',
                     '  step  2: MSE 0.2000 +- 0.0000']
    mses[0, 2], mses[1, 2] = np.inf, 3e26          # two tasks blow up after the 2nd step
    lines = results.eval_table(mses, 'MSE')
    assert lines[1] == '  step  1: MSE 0.3000 +- 0.1240 (median 0.3000)'
    assert lines[2] == '  step  2: MSE inf +- nan (median 0.2000)'
    assert lines[3].startswith('  2 of 5 tasks diverge (MSE not finite, or above 10 and growing)')
    mses[0, 2] = 2e7
    assert results.eval_table(mses, 'MSE')[2] == \
        '  step  2: MSE 6.000e+25 +- 1.052e+26 (median 0.2000)'
    assert results.eval_table(np.full((3, 2), 20.0), 'accuracy')[1] == \
        '  step  1: accuracy 20.0000 +- 0.0000'                # no divergence but for MSE
