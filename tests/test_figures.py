"""The figure scripts: their data without matplotlib, and the scripts themselves end to
end where it is installed (requirements-plots.txt; CI installs it)."""
import os

import numpy as np
import pytest

import results
from scripts import plot_curves, plot_sinusoid
from tests.helpers import SINE, run_script, sine_dir


@pytest.mark.slow
def test_curves_and_sinusoid_predictions_from_a_short_run(tmp_path, run_main):
    run_main(*SINE, f'--logdir={tmp_path}', '--metatrain_iterations=300', '--meta_lr=0.01')
    steps, values = plot_curves.read_scalars(str(tmp_path), 'Post-update loss, step 1')
    assert steps == [100, 200, 300] and all(np.isfinite(values))
    assert plot_curves.read_scalars(str(tmp_path), 'no such tag') == ([], [])
    task = plot_sinusoid.sample_task(5, seed=0)
    points = task['inputa'][0, :, 0]
    preds = plot_sinusoid.sinusoid_predictions(os.path.join(sine_dir(str(tmp_path)), 'model300'),
                                               task, points, update_lr=0.01)
    assert preds.shape == (11, 5)
    errors = ((preds - task['labela'][0, :, 0]) ** 2).mean(axis=1)
    assert errors[10] < errors[0]      # adapting on the K points fits them better


def write_event_file(path, step, value, scratch):
    """An event file holding one 'Post-update loss, step 1' scalar, at `path`."""
    from tf_quiet import tf
    writer = tf.summary.FileWriter(scratch)
    value = tf.Summary.Value(tag='Post-update loss, step 1', simple_value=value)
    summary = tf.Summary(value=[value])
    writer.add_summary(summary, step)
    writer.close()
    (written,) = os.listdir(scratch)
    os.rename(os.path.join(scratch, written), path)


def test_a_resumed_runs_newer_event_file_wins_whatever_the_mtimes(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    old = str(run / 'events.out.tfevents.1000.host')
    new = str(run / 'events.out.tfevents.2000.host')
    write_event_file(old, 100, 1.0, str(tmp_path / 'scratch1'))
    write_event_file(new, 100, 2.0, str(tmp_path / 'scratch2'))
    os.utime(new, (1, 1))              # as after a fresh clone: mtimes say nothing
    assert plot_curves.read_scalars(str(run), 'Post-update loss, step 1') == ([100], [2.0])


@pytest.mark.slow
@pytest.mark.extras
def test_plot_curves_names_the_file_it_writes_and_refuses_a_bad_out_before_any_work(tmp_path):
    pytest.importorskip('matplotlib', reason='the figure scripts need requirements-plots.txt')
    run = tmp_path / 'run'
    run.mkdir()
    write_event_file(str(run / 'events.out.tfevents.1000.host'), 100, 1.0, str(tmp_path / 's'))
    proc = run_script('-m scripts.plot_curves', str(run), '--out', str(tmp_path / 'curves'))
    assert proc.returncode == 0, proc.stderr        # matplotlib adds .png; the message says so
    assert proc.stdout.strip() == f'Wrote {tmp_path / "curves.png"}'
    assert (tmp_path / 'curves.png').read_bytes().startswith(b'\x89PNG')
    for out, message in ((tmp_path / 'c.xyz', 'matplotlib cannot write .xyz files; use one of '),
                         (run, f'is a folder; give a file name, e.g. {run / "figure.png"}')):
        proc = run_script('-m scripts.plot_curves', str(run), '--out', str(out))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f'error: --out={out}') and message in lines[0]
    assert sorted(os.listdir(tmp_path)) == ['curves.png', 'run', 's']      # nothing else written
    proc = run_script('-m scripts.sinusoid_seeds', str(run), '--out', str(run))   # no results
    assert proc.returncode == 1 and 'is a folder; give a file name' in proc.stderr   # yet
    proc = run_script('-m scripts.plot_sinusoid', '--maml', 'x', '--k', '0')
    assert proc.returncode == 2 and '--k must be at least 1' in proc.stderr


def test_moving_average_is_the_mean_of_each_value_and_those_before_it():
    assert plot_curves.moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert plot_curves.moving_average([1.0, 3.0, 5.0], 1) == [1.0, 3.0, 5.0]
    assert plot_curves.moving_average([2.0, 4.0, 9.0], 10) == [2.0, 3.0, 5.0]


def test_sinusoid_seed_table_counts_diverging_tasks(tmp_path):
    from scripts import sinusoid_seeds
    runs = {}
    for name, last in (('steady', 0.3), ('tipping', np.inf)):
        folder = tmp_path / name / 'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm'
        folder.mkdir(parents=True)
        mses = np.tile(np.linspace(3.0, 0.3, 11), (10, 1))
        mses[:3, -1] = last             # three tasks end not finite in 'tipping'
        mses[3, -1] = 11.0 if name == 'tipping' else 0.3     # large and grown: diverged
        results.write_eval_results(str(folder), 'test_ubs5_stepsize0.01', mses, 'model1', 'test')
        runs[name] = sinusoid_seeds.load(str(tmp_path / name), 5, 0.01)
    table = sinusoid_seeds.table(list(runs.values()))
    assert table.splitlines()[2].endswith('| 0 |') and table.splitlines()[3].endswith('| 4 |')
    assert '| across 1 seeds, no diverging task | 2.73 +- 0 | 1.65 +- 0 | 0.3 +- 0 |' in table


def test_results_table_gives_the_sinusoid_rows_across_seeds(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'sine_maml')
    for run, after_one_step in zip(exp.seed_runs()[:3], (0.5, 0.7, 0.9)):
        path = experiments.eval_csv(str(tmp_path), run, 5)
        os.makedirs(os.path.dirname(path))
        mses = np.full((600, 11), after_one_step)
        if run.name.endswith('seed2'):
            mses[:2, -1] = np.inf                     # two tasks of seed 2 diverge,
            mses[:2, 5] = 1000.0                      # and blow up the mean after 5 steps
        results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4], mses,
                                 checkpoint='model70000', split='test')
    rows = {line.split(' | ')[0]: line.split(' | ')
            for line in make_table.make_table(str(tmp_path)).splitlines()}
    one_step = rows['| Sinusoid K=5, MAML, MSE after 1 step']
    assert one_step[2] == '0.7 +- 0.16 (sd over 3 seeds)' and one_step[4] == '70000'
    assert one_step[7] == ('seed 3, 4: not yet evaluated; '
                           'diverging tasks per seed (0, 1, 2): 0, 0, 2 (2 of 1800); '
                           'over the 2 seeds without: 0.6 +- 0.1 |')
    # where diverging tasks more than double the mean, or make it not finite, the median
    assert rows['| Sinusoid K=5, MAML, MSE after 5 steps'][2] == \
        '1.81 +- 1.7 (sd over 3 seeds); median 0.7 over 1800 tasks'
    assert rows['| Sinusoid K=5, MAML, MSE after 10 steps'][2] == \
        'median 0.7 over 1800 tasks (the mean is not finite: tasks of seed 2 diverge)'
    assert 'not yet run' in rows['| Sinusoid K=5, pretrained, MSE after 1 step'][2]


def test_results_table_gives_omniglot_accuracy_across_seeds(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    assert [run.name for run in exp.seed_runs()] == \
        ['omniglot5way', 'omniglot5way_seed1', 'omniglot5way_seed2']

    def write(run, random_init, accuracy, checkpoint):
        path = experiments.eval_csv(str(tmp_path), run, 1, random_init=random_init)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        values = np.full((600, 11), accuracy)
        values[::2] += 0.01                           # a per-task spread: a nonzero interval
        results.write_eval_results(os.path.dirname(path), os.path.basename(path)[:-4], values,
                                 checkpoint=checkpoint, split='test')

    def rows():
        return [line.split(' | ') for line in make_table.make_table(str(tmp_path)).splitlines()
                if line.startswith('| Omniglot 5-way 1-shot |')
                or line.startswith('| Omniglot 5-way 1-shot, random init |')]

    seed0, seed1, seed2 = exp.seed_runs()
    write(seed0, False, 0.985, 'model60000')
    write(seed0, True, 0.40, results.random_init_label(0))
    maml, random_3 = rows()[:2]
    assert maml[2] == '99.00 +- 0.04 (seed 0 only)' and maml[5] == 'yes'
    assert maml[7] == 'seed 1, 2: not yet evaluated |'
    assert random_3[7].endswith('MAML after 3 steps: 99.00 +- 0.04 (seed 0 only) |')

    write(seed1, False, 0.975, 'model60000')
    write(seed2, False, 0.965, 'model20000')          # still training
    write(seed1, True, 0.50, results.random_init_label(1))
    maml, random_3 = rows()[:2]
    assert maml[2] == '98.00 +- 0.82 (sd over 3 seeds)' and maml[4] == '60000, 60000, 20000'
    assert maml[5] == 'no'                            # 98.00 is outside 98.7 +- 0.4
    assert maml[7] == ('interim: seed 2 evaluated before iteration 60000; '
                       'per seed (0, 1, 2): 99.00 +- 0.04, 98.00 +- 0.04, 97.00 +- 0.04 |')
    assert random_3[2] == '45.50 +- 5.00 (sd over 2 seeds)' and random_3[4] == '0 (random init)'
    assert random_3[7] == ('seed 2: not yet evaluated; per seed (0, 1): 40.50 +- 0.04, '
                           '50.50 +- 0.04; MAML after 3 steps: 98.00 +- 0.82 (sd over 3 seeds) |')


def test_results_table_keeps_earlier_checkpoints_evaluations_as_interim_rows(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'miniimagenet1shot')
    path = experiments.eval_csv(str(tmp_path), exp, 1)
    folder, name = os.path.split(path[:-len('.csv')])
    os.makedirs(folder)
    for checkpoint, accuracy in (('model20000', 0.42), ('model10000', 0.40), ('model60000', 0.47)):
        results.set_aside_other_checkpoints_result(folder, name, checkpoint)
        results.write_eval_results(folder, name, np.full((600, 11), accuracy), checkpoint, 'test')

    def rows():
        return {line.split(' | ')[0]: line.split(' | ')
                for line in make_table.make_table(str(tmp_path)).splitlines()}
    table = rows()
    final = table['| miniImagenet 5-way 1-shot']
    assert final[2:5] == ['47.00 +- 0.00', '10', '60000'] and 'interim' not in final[7]
    earlier = [label for label in table if label.startswith('| miniImagenet 5-way 1-shot, at')]
    assert earlier == ['| miniImagenet 5-way 1-shot, at 10000 iterations',
                       '| miniImagenet 5-way 1-shot, at 20000 iterations']
    assert table[earlier[0]][2] == '40.00 +- 0.00' and table[earlier[0]][4] == '10000'
    assert table[earlier[1]][7] == 'interim: 20000 of 60000 iterations |'
    os.remove(path)                                # the run is still going: its latest is interim
    results.write_eval_results(folder, name, np.full((600, 11), 0.45), 'model30000', 'test')
    assert rows()['| miniImagenet 5-way 1-shot'][7] == 'interim: 30000 of 60000 iterations |'


def test_results_table_keeps_each_seeds_earlier_evaluations_as_interim_rows(tmp_path):
    from scripts import experiments, make_table
    exp = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    for run, curve in zip(exp.seed_runs(), (((20000, 0.95), (60000, 0.99)),
                                            ((20000, 0.96), (40000, 0.97)))):
        folder, name = os.path.split(experiments.eval_csv(str(tmp_path), run, 1)[:-len('.csv')])
        os.makedirs(folder)
        for iterations, accuracy in curve:
            results.set_aside_other_checkpoints_result(folder, name, f'model{iterations}')
            results.write_eval_results(folder, name, np.full((600, 11), accuracy),
                                       f'model{iterations}', 'test')

    def rows(detail):
        return {line.split(' | ')[0]: line.split(' | ') for line in
                make_table.make_table(str(tmp_path), detail=detail).splitlines()
                if line.startswith('| Omniglot 5-way 1-shot')}
    table = rows(detail=True)
    assert table['| Omniglot 5-way 1-shot'][2] == '98.00 +- 1.00 (sd over 2 seeds)'
    assert [label for label in table if ' at ' in label] == [
        '| Omniglot 5-way 1-shot, seed 0, at 20000 iterations',
        '| Omniglot 5-way 1-shot, seed 1, at 20000 iterations']
    seed1 = table['| Omniglot 5-way 1-shot, seed 1, at 20000 iterations']
    assert seed1[2] == '96.00 +- 0.00' and seed1[4] == '20000' and seed1[6] == 'omniglot5way_seed1'
    assert seed1[7] == 'interim: 20000 of 60000 iterations |'
    assert not [label for label in rows(detail=False) if ' at ' in label]   # not in the README
