"""The figure scripts' data (matplotlib itself is optional and not needed here)."""
import os

import numpy as np

from scripts import plot_curves, plot_sinusoid
from tests.conftest import SINE, run_main, sine_dir


def test_curves_and_sinusoid_predictions_from_a_short_run(tmp_path):
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
    import tensorflow.compat.v1 as tf
    writer = tf.summary.FileWriter(scratch)
    summary = tf.Summary(value=[tf.Summary.Value(tag='Post-update loss, step 1', simple_value=value)])
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


def test_sinusoid_seed_table_counts_diverging_tasks(tmp_path):
    import utils
    from scripts import sinusoid_seeds
    runs = {}
    for name, last in (('steady', 0.3), ('tipping', np.inf)):
        folder = tmp_path / name / 'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm'
        folder.mkdir(parents=True)
        mses = np.tile(np.linspace(3.0, 0.3, 11), (10, 1))
        mses[:3, -1] = last             # three tasks end not finite in 'tipping'
        mses[3, -1] = 11.0 if name == 'tipping' else 0.3     # large and grown: diverged
        utils.write_eval_results(str(folder), 'test_ubs5_stepsize0.01', mses, 'model1', 'test')
        runs[name] = sinusoid_seeds.load(str(tmp_path / name), 5, 0.01)
    table = sinusoid_seeds.table(list(runs.values()))
    assert table.splitlines()[2].endswith('| 0 |') and table.splitlines()[3].endswith('| 4 |')
    assert '| across 1 seeds, no diverging task | 2.73 +- 0 | 1.65 +- 0 | 0.3 +- 0 |' in table
