"""Keep only the latest checkpoint of each experiment folder, ready to commit.

Training keeps the newest 3 checkpoints. A run committed to the repository (to resume
in another session or to ship a finished model) needs one: this deletes the others and
rewrites the `checkpoint` state file so that it lists only the latest, by relative name.

    python -m scripts.keep_latest_checkpoint logs/omniglot20way/cls_20.mbs_16.ubs_1.numstep5.updatelr0.1batchnorm
"""
import argparse
import os
import re
import sys

STATE_FILE = 'checkpoint'
MODEL_FILE = re.compile(r'^(model\d+)\.(index|meta|data-\d+-of-\d+)$')


def latest_model(folder):
    """The model name the state file points to, e.g. 'model37492'."""
    state = os.path.join(folder, STATE_FILE)
    if not os.path.exists(state):
        raise FileNotFoundError(f'no checkpoint state file in {folder}')
    with open(state) as f:
        match = re.search(r'^model_checkpoint_path: "([^"]+)"', f.read(), re.M)
    if not match:
        raise ValueError(f'{state} names no checkpoint')
    return os.path.basename(match.group(1))


def keep_latest(folder):
    """Delete every checkpoint but the latest; return (kept name, deleted file names)."""
    keep = latest_model(folder)
    if not os.path.exists(os.path.join(folder, keep + '.index')):
        raise FileNotFoundError(f'{folder}/{keep}.index is missing; nothing deleted')
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
        except (FileNotFoundError, ValueError) as e:
            sys.exit(f'error: {e}')
        print(f'{folder}: kept {keep}, deleted {len(deleted)} files')


if __name__ == '__main__':
    main()
