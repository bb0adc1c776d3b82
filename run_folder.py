"""What a run keeps on disk, and the checks that keep it safe: its settings, the
identity of its data, its lock, its checkpoints (found, chosen, checked and recovered),
and the start checks with their hints. No TensorFlow here.

Two entry points: `training_start(run)`, entered before training a run (the lock,
the checks, the settings), and `checkpoint_to_evaluate(run)`.
"""
import contextlib
import errno
import glob
import json
import os
import re

from config import DATA_SHAPE_SETTINGS, setting_phrase
from data import loading, prepared
from utils import ProcessLock, UserError, process_alive, write_atomically

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


KEPT_CHECKPOINTS = 3            # the newest ones; older ones are deleted as training goes


MILESTONE_INTERVAL = 10000      # checkpoints at multiples of this are never deleted by training


def checkpoint_prefix(path):
    """A checkpoint given as its folder (its newest), its prefix, or one of its files."""
    if os.path.isdir(path):
        found = checkpoints_in(path)
        if not found:
            raise UserError(f'--checkpoint={path} is a folder without model<N> checkpoints; '
                            f'{folder_checkpoint_hint(path)}')
        return found[0][1]
    for suffix in ('.index', '.meta'):
        if path.endswith(suffix):
            return path[:-len(suffix)]
    return path.split('.data-')[0]


def folder_checkpoint_hint(path):
    """A --logdir given as --checkpoint: name its experiment folders that hold one."""
    runs = trained_folders_in(path)
    if not runs:
        return ('give a run\'s experiment folder (the one holding settings.json) '
                'or a model<N> prefix')
    if len(runs) == 1:
        return f'it is a --logdir; give its experiment folder --checkpoint={runs[0]}'
    return 'it is a --logdir; give one of its experiment folders: ' + ', '.join(runs)


def find_checkpoint(run):
    if run.checkpoint:
        path = checkpoint_prefix(run.checkpoint)
    elif run.test_iter >= 0:
        path = os.path.join(run.exp_dir, f'model{run.test_iter}')
    else:
        found = checkpoints_in(run.exp_dir)
        if not found:
            raise UserError(f'no checkpoint in {run.exp_dir}: {missing_checkpoint_hint(run)}')
        path = found[0][1]
    if not os.path.isfile(path + ".index"):
        raise UserError(f'checkpoint {path} not found')
    return path


def missing_checkpoint_hint(run):
    """What to do when the experiment folder has no checkpoint: the flags that evaluate the
    logdir's closest trained run (K and alpha of training as --train_*), else train first."""
    closest = None
    for folder, stored in trained_runs_in(run.logdir):
        differ = run.settings_differences(stored)
        if closest is None or len(differ) < len(closest[1]):
            closest = folder, differ
    if (not closest or len(closest[1]) > 3
            or {k for k, _, _ in closest[1]} & set(DATA_SHAPE_SETTINGS)):
        return 'train first (same flags, --train=True), or give --checkpoint=PATH'
    folder, differ = closest
    flags = ' '.join(f'--train_{k}={v}' if k in ('update_batch_size', 'update_lr') else
                     f'--{k}={v}' for k, v, _ in differ)
    now = ', '.join(f'{k} {v} (now {ours})' for k, v, ours in differ)
    return (f'{folder} holds this logdir\'s run trained with {now}: evaluate it with {flags}, '
            f'or train this run first (--train=True)')


def trained_runs_in(logdir):
    """(experiment folder, its settings) for each folder of `logdir` holding a checkpoint."""
    found = [(folder, read_settings(folder)) for folder in trained_folders_in(logdir)]
    return [(folder, stored) for folder, stored in found if stored]


def check_fits(run, checkpoint):
    """Refuse a checkpoint whose run's settings.json names another network or split."""
    folder = os.path.dirname(checkpoint)
    stored = read_settings(folder)
    differ = run.architecture_differences(stored) if stored else []
    if differ:
        data = (' and on images of the size and channels it was trained on'
                if any(d.startswith('images of') for d in differ) else '')
        raise UserError(f'{checkpoint} was trained with {", ".join(differ)}; evaluate it with '
                        f'the flags in {os.path.join(folder, SETTINGS_FILE)}{data}')


def earlier_checkpoint_hint(checkpoint):
    """How to evaluate the checkpoint before a damaged one, when there is one."""
    iteration = checkpoint_iteration(os.path.basename(checkpoint))
    earlier = [(n, p) for n, p in checkpoints_in(os.path.dirname(checkpoint) or '.')
               if iteration is not None and n < iteration]
    if not earlier:
        return ''
    return (f'; evaluate the one before with --test_iter={earlier[0][0]} (or '
            f'--checkpoint={earlier[0][1]})')


def refuse_a_start_that_mixes_up_runs(run):
    """--resume=False where an earlier run saved checkpoints would interleave the two runs'
    checkpoints, and a later resume or evaluation would pick the earlier run's newest; a
    resume where the state file names checkpoints none of which is there (deleted, or not
    copied with the folder) would train again from iteration 1."""
    found = checkpoints_in(run.exp_dir)
    if not run.resume and found:
        raise UserError(f'--resume=False starts afresh, but {run.exp_dir} holds model{found[0][0]} '
                        f'of an earlier run; move that folder away or give another --logdir')
    lost = None if found or not run.resume else newest_named_by_state(run.exp_dir)
    if lost:
        raise UserError(f'{run.exp_dir} lost its checkpoint files: its checkpoint state names '
                        f'{lost}, but no model*.index file is there; restore them to '
                        f'resume, or give --resume=False to train this folder from iteration 1')


def check_training_data(run):
    """Record the identity of the data a run trains on (data.json: each class's digest),
    or refuse to resume it on other data, naming what changed. As with the settings,
    only a checkpoint binds the folder to its data."""
    now = loading.data_identity(run.datasource, run.data_dir)
    if now is None:
        return
    stored = read_settings(run.exp_dir, DATA_FILE)
    trained = checkpoints_in(run.exp_dir)
    if stored is not None and trained:
        differ = prepared.digest_differences(*(
            data_of_splits(run.datasource, digests, ('train', 'val'))
            for digests in (stored.get('classes', {}), now)))
        if differ:
            raise UserError(f'{run.exp_dir} was trained on other data than {run.data_dir} holds: '
                            f'{"; ".join(differ)}. Resume it on the data it was trained on '
                            f'({stored.get("data_dir")}), or train on this data in another '
                            f'--logdir')
        return
    if trained:
        print(f'Note: {run.exp_dir} holds no record of its data (trained by an earlier '
              f'version); recording {run.data_dir} as its data', flush=True)
    write_atomically(os.path.join(run.exp_dir, DATA_FILE), json.dumps(
        {'data_dir': os.path.abspath(run.data_dir), 'classes': now}, indent=0, sort_keys=True))


def data_of_splits(datasource, digests, splits):
    """The class digests of `splits` (Omniglot's splits are drawn from all its characters,
    so all of them)."""
    if datasource == 'omniglot':
        return digests
    return {k: v for k, v in digests.items() if k.split('/', 1)[0] in splits}


def note_other_data(run, checkpoint):
    """Say in one line when an evaluation's split is not the data its checkpoint's run
    recorded (evaluating on other data is allowed)."""
    stored = read_settings(os.path.dirname(checkpoint), DATA_FILE)
    now = loading.data_identity(run.datasource, run.data_dir)
    if not stored or now is None:
        return
    recorded = data_of_splits(run.datasource, stored.get('classes', {}), (run.eval_split,))
    if not recorded:
        return
    differ = prepared.digest_differences(
        recorded, data_of_splits(run.datasource, now, (run.eval_split,)))
    if differ:
        print(f'Note: evaluating on other data than {os.path.dirname(checkpoint)} was trained '
              f'with ({run.eval_split} split: {"; ".join(differ)})', flush=True)


def trained_already(run):
    """Say so, without loading any data, when the newest checkpoint holds every iteration."""
    found = checkpoints_in(run.exp_dir)
    if run.total_iterations == 0 or not found or found[0][0] < run.total_iterations:
        return False
    print(f'Nothing to train: {run.exp_dir} already holds {found[0][0]} of '
          f'{run.total_iterations} iterations. Evaluate it with --train=False.')
    return True


# ------------------------------------------------------------------ the two entry points
@contextlib.contextmanager
def training_start(run):
    """Enter before training `run`, and hold while it trains: its folder made and
    checked writable, its lock taken, a start that would mix up two runs refused, its
    settings recorded (or checked against the record), what a killed save left
    removed. Yields False when the folder already holds every iteration (said so)."""
    check_writable(run.exp_dir)
    with training_lock(run.exp_dir):
        refuse_a_start_that_mixes_up_runs(run)
        check_settings(run.exp_dir, run.training_settings())
        for orphan in glob.glob(os.path.join(run.exp_dir, '*.tempstate*')):
            os.remove(orphan)    # left by a save that was killed
        yield not trained_already(run)


def checkpoint_to_evaluate(run):
    """The checkpoint an evaluation of `run` restores (None for --random_init): the one
    --checkpoint or --test_iter names, else the newest; refused when its run's
    settings.json names another network or split."""
    if run.random_init:
        return None
    checkpoint = find_checkpoint(run)
    check_fits(run, checkpoint)
    return checkpoint
