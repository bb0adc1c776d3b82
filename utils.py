"""What a run leaves on disk besides checkpoints: evaluation result files and
their statistics; and UserError. No TensorFlow here."""
import csv
import math
import os
import pickle

import numpy as np


class UserError(Exception):
    """A problem the user can fix (missing data, bad setting): printed as one line."""


# ------------------------------------------------------------------ result files
def eval_basename(update_batch_size, update_lr):
    return f'test_ubs{update_batch_size}_stepsize{update_lr}'


# ------------------------------------------------------------------ statistics
def summarize_per_step(values):
    """Mean, std and 95% interval (1.96 std / sqrt(n)) per column of [tasks, steps]."""
    values = np.asarray(values, dtype=np.float64)
    means = values.mean(axis=0)
    stds = values.std(axis=0)
    ci95 = 1.96 * stds / math.sqrt(values.shape[0])
    return means, stds, ci95


def write_eval_results(folder, basename, values, checkpoint=None):
    """Write the reference's CSV (header, means, stds, ci95) and pickle ({'mses': values}).

    The pickle also names the evaluated checkpoint ('checkpoint': 'model60000'), so a
    table made later knows which iteration the numbers belong to.
    """
    values = np.asarray(values)
    means, stds, ci95 = summarize_per_step(values)
    csv_path = os.path.join(folder, basename + '.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([f'update{i}' for i in range(values.shape[1])])
        writer.writerow(means)
        writer.writerow(stds)
        writer.writerow(ci95)
    with open(os.path.join(folder, basename + '.pkl'), 'wb') as f:
        pickle.dump({'mses': values, 'checkpoint': checkpoint}, f)
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
