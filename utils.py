"""Small helpers shared by the model, the data and the training loop.

The normalisation functions here are written out by hand instead of calling
`tf.nn.moments` / `tf.nn.fused_batch_norm`: TF 2 stops the gradient through the
mean inside the variance, which leaves first derivatives right but makes the
second derivatives that MAML needs wrong (see SPEC section 4).
"""
import csv
import math
import os
import pickle

import numpy as np
import tensorflow.compat.v1 as tf

BATCH_NORM_EPSILON = 1e-3   # tf.contrib.layers.batch_norm default
LAYER_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm default
NORMS = ('batch_norm', 'layer_norm', 'None')


class UserError(Exception):
    """A problem the user can fix (missing data, bad setting): printed as one line."""


# ---------------------------------------------------------------- normalisation
def _moments(x, axes):
    """Mean and (biased) variance whose second derivatives are exact."""
    mean = tf.reduce_mean(x, axes, keepdims=True)
    variance = tf.reduce_mean(tf.square(x - mean), axes, keepdims=True)
    return mean, variance


def batch_norm(x, beta):
    """Transductive batch norm: statistics of this batch, offset only, no scale."""
    mean, variance = _moments(x, list(range(len(x.shape) - 1)))
    return (x - mean) * tf.rsqrt(variance + BATCH_NORM_EPSILON) + beta


def layer_norm(x, beta, gamma):
    """Per-example normalisation over all non-batch dimensions, offset and scale."""
    mean, variance = _moments(x, list(range(1, len(x.shape))))
    return (x - mean) * tf.rsqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def normalize(x, norm, params, activation=tf.nn.relu):
    """Apply `norm` ('batch_norm', 'layer_norm' or 'None') then the activation."""
    if norm == 'batch_norm':
        x = batch_norm(x, params['beta'])
    elif norm == 'layer_norm':
        x = layer_norm(x, params['beta'], params['gamma'])
    elif norm != 'None':
        raise UserError(f"unknown --norm={norm!r}; use one of {', '.join(NORMS)}")
    return activation(x) if activation is not None else x


# ----------------------------------------------------------------------- losses
def mse(pred, label):
    return tf.reduce_mean(tf.square(pred - label))


def xent(pred, label, update_batch_size):
    """Per-example softmax cross-entropy divided by K (a vector, as the reference)."""
    return tf.nn.softmax_cross_entropy_with_logits(logits=pred, labels=label) / update_batch_size


def accuracy(pred, label):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(label, -1)), pred.dtype))


# ------------------------------------------------------------ experiment names
def exp_string(num_classes, meta_batch_size, train_update_batch_size, num_updates,
               train_update_lr, num_filters=64, max_pool=False, stop_grad=False,
               baseline=None, norm='batch_norm'):
    """The reference's experiment folder name (SPEC section 2)."""
    name = (f'cls_{num_classes}.mbs_{meta_batch_size}.ubs_{train_update_batch_size}'
            f'.numstep{num_updates}.updatelr{train_update_lr}')
    if num_filters != 64:
        name += f'hidden{num_filters}'
    if max_pool:
        name += 'maxpool'
    if stop_grad:
        name += 'stopgrad'
    if baseline:
        name += baseline
    name += {'batch_norm': 'batchnorm', 'layer_norm': 'layernorm', 'None': 'nonorm'}[norm]
    return name


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


# ------------------------------------------------------------------ checkpoints
def restore_variables(sess, checkpoint, variables, require_all=False):
    """Restore `variables` from `checkpoint` by name, checking shapes first.

    Returns the names absent from the checkpoint (they keep their initial values);
    with require_all, any absence is an error. Extra checkpoint entries are ignored.
    """
    stored = dict(tf.train.list_variables(checkpoint))
    by_name = {v.op.name: v for v in variables}
    missing = sorted(n for n in by_name if n not in stored)
    if require_all and missing:
        raise UserError(f'checkpoint {checkpoint} does not fit this model: it lacks '
                        f'{", ".join(missing[:4])}{"..." if len(missing) > 4 else ""} '
                        f'(check --datasource, --num_filters, --max_pool, --norm, --conv)')
    present = {n: v for n, v in by_name.items() if n in stored}
    for name, var in present.items():
        if list(stored[name]) != var.shape.as_list():
            raise UserError(f'checkpoint {checkpoint} does not fit this model: {name} has shape '
                            f'{stored[name]} there and {var.shape.as_list()} here '
                            f'(check --num_classes, --num_filters, --max_pool, --conv)')
    if present:
        tf.train.Saver(present).restore(sess, checkpoint)
    return missing
