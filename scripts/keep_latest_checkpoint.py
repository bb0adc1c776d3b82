"""Keep only the latest checkpoint of each experiment folder, ready to commit.

Training keeps the newest 3 checkpoints. A run committed to the repository (to resume
in another session or to ship a finished model) needs one: this deletes the others and
rewrites the `checkpoint` state file so that it lists only the latest, by relative name.

    python -m scripts.keep_latest_checkpoint logs/omniglot20way/cls_20.mbs_16.ubs_1.numstep5.\
updatelr0.1batchnorm
"""
import argparse
import os
import re
import sys

import utils

STATE_FILE = 'checkpoint'
MODEL_FILE = re.compile(r'^(model\d+)\.(index|meta|data-\d+-of-\d+)$')


def keep_latest(folder):
    """Delete every checkpoint but the newest; return (kept name, deleted file names)."""
    found = utils.checkpoints_in(folder)
    if not found:
        raise FileNotFoundError(f'no model<N> checkpoint in {folder}; nothing deleted')
    keep = os.path.basename(found[0][1])
    deleted = sorted(name for name in os.listdir(folder)
                     if MODEL_FILE.match(name) and MODEL_FILE.match(name).group(1) != keep)
    for name in deleted:
        os.remove(os.path.join(folder, name))
    with open(os.path.join(folder, STATE_FILE), 'w') as f:
        f.write(f'model_checkpoint_path: "{keep}"\nall_model_checkpoint_paths: "{keep}"\n')
    return keep, deleted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folders', nargs='+', help='experiment folders (LOGDIR/EXPERIMENT)')
    args = parser.parse_args(argv)
    for folder in args.folders:
        try:
            keep, deleted = keep_latest(folder)
        except FileNotFoundError as e:
            sys.exit(f'error: {e}')
        print(f'{folder}: kept {keep}, deleted {len(deleted)} files')


if __name__ == '__main__':
    main()
