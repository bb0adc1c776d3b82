"""Keep only the latest checkpoint of each experiment folder, ready to commit.

Training keeps the newest 3 checkpoints. A run committed to the repository (to resume
elsewhere or to ship a finished model) needs one: this keeps the newest checkpoint that
reads back whole, deletes the others and rewrites the `checkpoint` state file so that
it lists only that one, by relative name. A folder being trained is refused.

    python -m scripts.keep_latest_checkpoint logs/omniglot20way/cls_20.mbs_16.ubs_1.numstep5.\
updatelr0.1batchnorm

A run's --logdir (logs/omniglot20way) stands for the experiment folders inside it.
"""
import argparse
import os
import re

import run_folder
from utils import UserError, exit_on_user_error

MODEL_FILE = re.compile(r'^(model\d+)\.(index|meta|data-\d+-of-\d+)$')


def readable(prefix):
    """Whether every tensor of the checkpoint at `prefix` can be read back."""
    from tf_quiet import tf  # (seconds: only once there is a checkpoint to read)
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception:        # a damaged file raises OpError, ValueError, IndexError...
        return False
    return True


def keep_latest(folder):
    """Delete every checkpoint but the newest readable one; return (kept name, deleted
    file names). A damaged newer one is deleted too: it could not be resumed from."""
    found = run_folder.checkpoints_in(folder)
    if not found:
        raise UserError(f'no model<N> checkpoint in {folder}; nothing deleted')
    trainer = run_folder.training_in(folder)
    if trainer:
        raise UserError(f'process {trainer} is training {folder}; stop it first (Ctrl-C saves '
                        f'the state), then prune. Nothing deleted')
    keep = next((os.path.basename(p) for _, p in found if readable(p)), None)
    if keep is None:
        raise UserError(f'none of the {len(found)} checkpoints in {folder} is readable; '
                        f'nothing deleted')
    deleted = sorted(name for name in os.listdir(folder)
                     if MODEL_FILE.match(name) and MODEL_FILE.match(name).group(1) != keep)
    for name in deleted:
        os.remove(os.path.join(folder, name))
    with open(os.path.join(folder, run_folder.CHECKPOINT_STATE_FILE), 'w') as f:
        f.write(f'model_checkpoint_path: "{keep}"\nall_model_checkpoint_paths: "{keep}"\n')
    return keep, deleted


def experiment_folders(folder):
    """`folder` when it holds checkpoints, else those of its subfolders that do: a
    --logdir holds one experiment folder per setting string."""
    if run_folder.checkpoints_in(folder):
        return [folder]
    found = run_folder.trained_folders_in(folder)
    if not found:
        raise UserError(f'no model<N> checkpoint in {folder} or the folders in it; '
                        f'nothing deleted')
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folders', nargs='+',
                        help='experiment folders (LOGDIR/EXPERIMENT), or a LOGDIR for those in it')
    args = parser.parse_args(argv)
    exit_on_user_error(lambda: keep_latest_of(args.folders))


def keep_latest_of(given):
    for folder in [f for name in given for f in experiment_folders(name)]:
        keep, deleted = keep_latest(folder)
        print(f'{folder}: kept {keep}, deleted {len(deleted)} files')


if __name__ == '__main__':
    main()
