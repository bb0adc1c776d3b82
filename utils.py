"""What a run keeps on disk besides checkpoints: its settings file and lock, and
evaluation result files with their statistics; and UserError. No TensorFlow here."""
import contextlib
import csv
import errno
import io
import json
import math
import os
import pickle
import re

import numpy as np


class UserError(Exception):
    """A problem the user can fix (missing data, bad setting): printed as one line."""


# ------------------------------------------------------------------- run folder
SETTINGS_FILE = 'settings.json'
DATA_FILE = 'data.json'        # the identity of the data a run was trained on
LOCK_FILE = 'train.lock'
CHECKPOINT_STATE_FILE = 'checkpoint'   # TensorFlow's list of a folder's checkpoints
CHECKPOINT_INDEX = re.compile(r'model(\d+)\.index')


def checkpoint_iteration(name):
    """N of a checkpoint named model<N> (None for any other name)."""
    match = re.fullmatch(r'model(\d+)', name)
    return int(match.group(1)) if match else None


def checkpoints_in(folder):
    """[(iteration, prefix)] of the model<N> checkpoints in `folder`, newest first.

    Read from the checkpoint files themselves, not from TensorFlow's `checkpoint`
    state file, so a deleted or damaged state file cannot hide a run's checkpoints.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(int(m.group(1)), os.path.join(folder, f'model{m.group(1)}'))
             for m in map(CHECKPOINT_INDEX.fullmatch, names) if m]
    return sorted(found, reverse=True)


def newest_named_by_state(folder):
    """The newest model<N> that TensorFlow's checkpoint state file in `folder` names, or
    None (read as text: a damaged file names none)."""
    try:
        with open(os.path.join(folder, CHECKPOINT_STATE_FILE), errors='replace') as f:
            names = re.findall(r'"(model\d+)"', f.read())
    except OSError:
        return None
    return max(names, key=checkpoint_iteration, default=None)


def trained_folders_in(logdir):
    """The folders of `logdir` holding a checkpoint, sorted: a --logdir holds one
    experiment folder per setting string."""
    try:
        names = sorted(os.listdir(logdir))
    except OSError:
        return []
    return [os.path.join(logdir, n) for n in names if checkpoints_in(os.path.join(logdir, n))]


def check_writable(folder):
    """Make `folder` and check a file can be written in it, before any training."""
    probe = os.path.join(folder, '.write_test')
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as err:
        raise UserError(f'cannot write to {folder} ({err.strerror}); '
                        f'{write_failure_advice(err)}') from None


def write_failure_advice(err):
    """What to do about an OSError met writing run outputs: space only when space ran out."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return 'free some space or choose another --logdir'
    return 'choose another --logdir'


def check_settings(folder, settings):
    """Record the settings a folder is trained with (settings.json), or refuse in one
    line to go on training it with other ones. Only a checkpoint binds a folder to its
    settings: before the first one (a run that failed at start-up or diverged early)
    a relaunch with other settings takes the folder over."""
    settings = json.loads(json.dumps(settings))
    path = os.path.join(folder, SETTINGS_FILE)
    stored = read_settings(folder)
    if stored is not None and checkpoints_in(folder):
        differ = [k for k in sorted(set(stored) | set(settings))
                  if stored.get(k) != settings.get(k)]
        if differ:
            listed = ', '.join(setting_phrase(k, stored.get(k), settings.get(k)) for k in differ)
            data = (' (the images\' size and channels are those --data_dir was prepared with)'
                    if set(differ) & set(DATA_SHAPE_SETTINGS) else '')
            raise UserError(f'{folder} was trained with {listed}; resume with those settings{data} '
                            f'or train in another --logdir')
        return
    write_atomically(path, json.dumps(settings, indent=1, sort_keys=True))


DATA_SHAPE_SETTINGS = ('image_size', 'channels')   # settings of the data, not flags


def setting_phrase(name, theirs, ours):
    """'--num_filters=32 (now 64)'; a setting that is no flag but the data's own, such as
    the images' size, in words."""
    if name == 'image_size':
        return f'images of {theirs}x{theirs} (now {ours}x{ours})'
    if name == 'channels':
        return f'images of {theirs} channel(s) (now {ours})'
    return f'--{name}={theirs} (now {ours})'


def read_settings(folder, name=SETTINGS_FILE):
    """The settings.json (or another JSON file `name`) of a run folder, or None when it
    has none; a damaged one is a UserError."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            stored = json.load(f)
        if not isinstance(stored, dict):
            raise ValueError('not a JSON object')
    except (OSError, ValueError) as err:
        raise UserError(f'{path} is damaged ({err}); restore it, or delete it and resume with '
                        f'the flags the folder was trained with') from None
    return stored


def process_start(pid):
    """When process `pid` started (clock ticks since boot), or None where /proc cannot
    tell: with its pid, it names a process even after the pid is reused."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid, started=None):
    """Whether process `pid` runs (and, when `started` is given and /proc can tell, is
    the process that started then, not a later one given the same pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_start(pid)
    return started is None or now is None or now == started


class ProcessLock:
    """A file naming the process that holds it (pid and start time), so no second
    process does the same work at the same time. A lock whose process no longer runs
    (killed, or its pid since reused) is taken over. `doing`: the lock's work as the
    refusal names it, e.g. 'training /x'; `unwritable`: the advice when the lock's folder
    cannot be written at all (read-only, no permission)."""

    def __init__(self, path, doing, unwritable='choose another folder'):
        self.path, self.doing, self.unwritable = path, doing, unwritable

    def __enter__(self):
        try:
            self.take()
        except OSError as err:
            if not os.path.lexists(self.path):     # no lock: its folder cannot be written
                folder = os.path.dirname(self.path) or '.'
                raise UserError(f'cannot write in {folder} ({err.strerror}); '
                                f'{self.unwritable}') from None
            raise UserError(f'cannot take the lock {self.path} ({err.strerror}); if no process '
                            f'is {self.doing}, delete it') from None
        return self

    def holder(self):
        """(pid, start time or None) written in the lock, or None when it is unreadable."""
        with open(self.path, errors='replace') as f:
            fields = f.read().split()
        if not fields or not all(v.isdigit() for v in fields[:2]):
            return None
        return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)

    def take(self):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = self.holder()
            if holder and holder[0] != os.getpid() and process_alive(*holder):
                raise UserError(f'process {holder[0]} is {self.doing}; wait for it or stop it '
                                f'(its lock is {self.path})') from None
            os.remove(self.path)    # left by a process that was killed, or damaged
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, f'{os.getpid()} {process_start(os.getpid()) or ""}'.strip().encode())
        os.close(fd)

    def __exit__(self, *exc):
        if os.path.exists(self.path):
            os.remove(self.path)
        return False


def training_lock(folder):
    """The lock a training process holds on its experiment folder."""
    return ProcessLock(os.path.join(folder, LOCK_FILE), f'training {folder}',
                       unwritable='choose another --logdir')


def training_in(folder):
    """The pid of a process training `folder` now, or None."""
    lock = training_lock(folder)
    try:
        holder = lock.holder()
    except OSError:
        return None
    return holder[0] if holder and process_alive(*holder) else None


# ------------------------------------------------------------------ result files
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


# ------------------------------------------------------------------ statistics
def summarize_per_step(values):
    """Mean, std and 95% interval (1.96 std / sqrt(n)) per column of [tasks, steps]."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid='ignore'):          # a diverging task's inf makes its std nan
        means = values.mean(axis=0)
        stds = values.std(axis=0)
    ci95 = 1.96 * stds / math.sqrt(values.shape[0])
    return means, stds, ci95


DIVERGING_MSE = 10.0   # predicting 0 for amplitude A scores A^2 / 2, 12.5 at most


def count_diverging(mses):
    """Sinusoid tasks [tasks, steps + 1] whose MSE after the last step is not finite, or
    above DIVERGING_MSE and more than twice what it was after the first step."""
    last = mses[:, -1]
    with np.errstate(invalid='ignore'):
        grew = (last > DIVERGING_MSE) & (last > 2 * mses[:, 1])
    return int(np.sum(~np.isfinite(last) | grew))


def write_atomically(path, data):
    """Write a file whole or not at all (a temporary file beside it, then a rename), so
    a full disk or an interruption never leaves it half written."""
    tmp = f'{path}.tmp{os.getpid()}'
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        kept = 'it was left as it was' if os.path.lexists(path) else 'nothing was written'
        raise UserError(f'cannot write {path} ({err.strerror or err}); {kept}') from None


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
