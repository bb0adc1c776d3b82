"""An evaluation's result files: their names, writing and reading them, their statistics,
and whether one is there and whole for a given checkpoint. No TensorFlow here.

A result is the original's pair: `test_ubs{K}_stepsize{alpha}.csv` (header, then means,
standard deviations and 95% intervals per number of inner steps) and the `.pkl` beside
it ({'mses': per-task values, and here also the checkpoint, split and task count}).
"""
import csv
import io
import math
import os
import pickle
import re

import numpy as np

from utils import UserError, write_atomically

EVAL_SPLIT, EVAL_TASKS = 'test', 600   # what the original's result file name means


def eval_basename(update_batch_size, update_lr, split=EVAL_SPLIT, num_tasks=EVAL_TASKS,
                  random_init=False):
    """The original's name for a 600-task test evaluation; any other split or task count,
    or a random initialisation evaluated instead of a checkpoint, says so in the name, so
    it never replaces a test result."""
    name = f'test_ubs{update_batch_size}_stepsize{update_lr}'
    if split != EVAL_SPLIT:
        name += f'_{split}'
    if num_tasks != EVAL_TASKS:
        name += f'_{num_tasks}tasks'
    if random_init:
        name += '_randominit'
    return name


def random_init_label(seed):
    """What a random-initialisation result records in place of a checkpoint name."""
    return f'seed{seed}'


def set_aside_other_checkpoints_result(folder, basename, checkpoint):
    """Before writing an evaluation of `checkpoint`: an existing result of another
    checkpoint under the same name is renamed to <name>_<its checkpoint>. Returns the
    new name, or None when nothing was moved."""
    csv_path = os.path.join(folder, basename + '.csv')
    if not os.path.isfile(csv_path):
        return None
    try:
        previous = read_eval_pickle(csv_path).get('checkpoint')
    except (OSError, EOFError, pickle.UnpicklingError):
        previous = None
    if previous == checkpoint:
        return None
    moved = f'{basename}_{previous or "unknown_checkpoint"}'   # read back by set_aside_results
    for ext in ('.csv', '.pkl'):
        if os.path.exists(os.path.join(folder, basename + ext)):
            os.replace(os.path.join(folder, basename + ext), os.path.join(folder, moved + ext))
    return moved


def set_aside_results(csv_path):
    """[(iterations, CSV path)] of the earlier results that set_aside_other_checkpoints_result
    kept beside the evaluation `csv_path` as <name>_model<N>.csv, oldest first."""
    folder, filename = os.path.split(csv_path)
    pattern = re.compile(re.escape(filename[:-len('.csv')]) + r'_model(\d+)\.csv')
    found = []
    for other in (os.listdir(folder) if os.path.isdir(folder) else []):
        match = pattern.fullmatch(other)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, other)))
    return sorted(found)


def summarize_per_step(values):
    """Mean, std and 95% interval (1.96 std / sqrt(n)) per column of [tasks, steps]."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid='ignore'):          # a diverging task's inf makes its std nan
        means = values.mean(axis=0)
        stds = values.std(axis=0)
    ci95 = 1.96 * stds / math.sqrt(values.shape[0])
    return means, stds, ci95


DIVERGING_MSE = 10.0   # predicting 0 for amplitude A scores A^2 / 2, 12.5 at most


def diverging(mses):
    """Which sinusoid tasks of [tasks, steps + 1] diverge: their MSE after the last step
    is not finite, or above DIVERGING_MSE and more than twice what it was after the
    first step."""
    last = mses[:, -1]
    with np.errstate(invalid='ignore'):
        grew = (last > DIVERGING_MSE) & (last > 2 * mses[:, 1])
    return ~np.isfinite(last) | grew


def count_diverging(mses):
    return int(np.sum(diverging(mses)))


def nan_as_inf(mses):
    """A diverging task's nan comes from inf - inf: count it as inf for medians."""
    return np.where(np.isnan(mses), np.inf, mses)


def eval_table(values, metric):
    """The lines an evaluation prints: the metric's mean +- 95% interval after each step.
    Where sinusoid tasks diverge, their huge or infinite MSEs are the mean: the median
    after each step is given beside it, and a line says how many tasks diverge."""
    values = np.asarray(values, dtype=np.float64)
    means, _, ci95 = summarize_per_step(values)
    diverged = count_diverging(values) if metric == 'MSE' else 0
    medians = np.median(nan_as_inf(values), axis=0) if diverged else [None] * len(means)
    lines = [f'  step {step:2d}: {metric} {number(m)} +- {number(c)}' +
             (f' (median {number(median)})' if diverged else '')
             for step, (m, c, median) in enumerate(zip(means, ci95, medians))]
    if diverged:
        lines.append(f'  {diverged} of {len(values)} tasks diverge (MSE not '
                     f'finite, or above {DIVERGING_MSE:g} and growing); they dominate the '
                     f'means, the medians show the typical task')
    return lines


def number(value):
    """Four decimals, or three significant digits with an exponent where that is long."""
    return f'{value:.4f}' if not abs(value) >= 1e6 else f'{value:.3e}'


def write_eval_results(folder, basename, values, checkpoint=None, split=None):
    """Write the reference's CSV (header, means, stds, ci95) and pickle ({'mses': values}).

    The pickle also names the evaluated checkpoint ('checkpoint': 'model60000'), the
    split and the number of tasks, so a table made later knows what the numbers are.
    Each file is written atomically, the pickle first: a CSV is there only when its
    pickle is complete, so the CSV's presence means a whole result.
    """
    values = np.asarray(values)
    means, stds, ci95 = summarize_per_step(values)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([f'update{i}' for i in range(values.shape[1])])
    for row in (means, stds, ci95):
        writer.writerow(row)
    csv_path = os.path.join(folder, basename + '.csv')
    write_atomically(csv_path[:-len('.csv')] + '.pkl', pickle.dumps(
        {'mses': values, 'checkpoint': checkpoint, 'split': split, 'num_tasks': len(values)}))
    write_atomically(csv_path, text.getvalue())
    return csv_path


def read_eval_pickle(csv_path):
    """The pickle written beside an evaluation CSV: {'mses': [tasks, steps + 1], 'checkpoint'}."""
    with open(csv_path[:-len('.csv')] + '.pkl', 'rb') as f:
        return pickle.load(f)


def read_eval_csv(path):
    """Inverse of write_eval_results' CSV: (means, stds, ci95) as float arrays."""
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    return tuple(np.array([float(v) for v in row]) for row in rows[1:4])


def read_result(csv_path):
    """An evaluation as (its pickle's contents, the CSV's (means, stds, ci95)); a missing
    or damaged file of the pair is a UserError naming it."""
    pkl_path = csv_path[:-len('.csv')] + '.pkl'
    try:
        stored = read_eval_pickle(csv_path)
        steps = np.asarray(stored['mses']).shape[1]
    except Exception as err:    # unpickling damaged bytes can raise almost anything
        raise damaged_result(pkl_path, err, csv_path) from None
    try:
        columns = read_eval_csv(csv_path)
        if len(columns) != 3 or any(len(c) != steps for c in columns):
            raise ValueError(f'expected 3 rows of {steps} values')
    except (OSError, ValueError) as err:
        raise damaged_result(csv_path, err, csv_path) from None
    computed = summarize_per_step(stored['mses'])
    if not all(np.allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=True)
               for a, b in zip(columns, computed)):
        raise UserError(f'{csv_path} disagrees with the per-task values in '
                        f'{os.path.basename(pkl_path)} (edited by hand?); delete both and '
                        f'evaluate again')
    return stored, columns


def damaged_result(path, err, csv_path):
    reason = getattr(err, 'strerror', None) or str(err) or type(err).__name__
    return UserError(f'{path} is missing or damaged ({reason}); delete '
                     f'{os.path.basename(csv_path)} and its .pkl and evaluate again')


def result_of(csv_path, checkpoint):
    """Whether a whole, readable evaluation of `checkpoint` (its name, e.g. 'model60000')
    is at `csv_path`."""
    try:
        stored, _ = read_result(csv_path)
    except UserError:
        return False
    return checkpoint is not None and stored.get('checkpoint') == checkpoint
