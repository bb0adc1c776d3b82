"""Train and evaluate every experiment of the paper's tables, then write the table.

  bash scripts/reproduce_all.sh                         # everything (days on a CPU)
  bash scripts/reproduce_all.sh --only omniglot5way     # a subset (comma-separated)
  bash scripts/reproduce_all.sh --omniglot_source DIR   # prepare Omniglot from local zips first
  bash scripts/reproduce_all.sh --smoke                 # the whole chain on tiny synthetic data

Finished trainings are skipped and interrupted ones resume (main.py does both);
an evaluation is skipped when its CSV is newer than the checkpoint.
"""
import argparse
import os
import subprocess
import sys
import time

import utils
from scripts import experiments, make_table
from utils import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMOKE_TASKS = 5
SMOKE_FLAGS = [f'--num_test_tasks={SMOKE_TASKS}', '--omniglot_split=20,20',
               '--print_interval=5', '--save_interval=5']
SMOKE_ITERATIONS = 10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [e.name for e in experiments.experiments()]
    parser.add_argument('--only', help='comma-separated subset of: ' + ', '.join(names))
    parser.add_argument('--logdir', default=None, help='default: logs (smoke: logs/smoke)')
    parser.add_argument('--data_dir', default=os.path.join(ROOT, 'data'))
    parser.add_argument('--omniglot_source',
                        help='folder with the Omniglot zips, to prepare the data')
    parser.add_argument('--miniimagenet_source',
                        help='folder with the miniImagenet CSVs and images')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny synthetic data, 10 iterations each')
    parser.add_argument('--sine_update_lr', type=float, default=0.01,
                        help="reference's usage line: 0.001")
    parser.add_argument('--mini5shot_meta_batch_size', type=int, default=2,
                        help="reference's usage line: 4")
    parser.add_argument('--omniglot_iterations', type=int, default=60000)
    parser.add_argument('--seeds', type=int, default=None,
                        help='train only the first N seeds of the experiments run with several '
                             '(default: all, e.g. 5 for the sinusoid MAML)')
    args = parser.parse_args()
    selected = args.only.split(',') if args.only else names
    unknown = sorted(set(selected) - set(names))
    if unknown:
        parser.error(f'unknown experiment {", ".join(unknown)}; choose from {", ".join(names)}')
    args.selected = selected
    args.logdir = args.logdir or os.path.join(ROOT, 'logs', 'smoke' if args.smoke else '')
    return args


def run(cmd):
    """Run a step; on Ctrl-C (which the step receives too) let it save and exit first."""
    print('  $ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    with subprocess.Popen(cmd, env=env) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.wait()
            raise


def prepare_data(args, needed):
    """Prepare the datasets the selected experiments need when a source is given."""
    steps = []
    if 'omniglot' in needed and args.omniglot_source:
        extra = ['--expect_characters=60', '--expect_images=1200'] if args.smoke else []
        steps.append(('prepare_omniglot.py', args.omniglot_source, 'omniglot_resized', extra))
    if 'miniimagenet' in needed and args.miniimagenet_source:
        steps.append(('prepare_miniimagenet.py', args.miniimagenet_source, 'miniImagenet', []))
    for script, source, folder, extra in steps:
        cmd = [sys.executable, os.path.join(ROOT, 'data', script), '--source', source,
               '--dest', os.path.join(args.data_dir, folder), *extra]
        if run(cmd) != 0:
            raise UserError(f'data/{script} failed (its message is above); nothing was trained')


def make_smoke_sources(args):
    """Tiny synthetic upstream-format sources, prepared by the real scripts."""
    from data import synthetic
    root = os.path.join(args.logdir, 'smoke_sources')
    omniglot, mini = os.path.join(root, 'omniglot'), os.path.join(root, 'miniimagenet')
    if not os.path.isdir(root):
        os.makedirs(omniglot)
        synthetic.omniglot_zips(omniglot, alphabets=(2, 1), characters=20, drawings=20)
        synthetic.miniimagenet_source(mini, classes=(5, 5, 5), per_class=20)
    args.omniglot_source, args.miniimagenet_source = omniglot, mini
    args.data_dir = os.path.join(args.logdir, 'smoke_data')


def train_and_evaluate(exp, args):
    iterations = SMOKE_ITERATIONS if args.smoke else exp.iterations
    common = [sys.executable, os.path.join(ROOT, 'main.py'), *exp.train_flags,
              *exp.iteration_flags(iterations), f'--logdir={os.path.join(args.logdir, exp.name)}',
              f'--data_dir={args.data_dir}', *(SMOKE_FLAGS if args.smoke else [])]
    if run(common) != 0:
        return False
    folder = experiments.experiment_folder(args.logdir, exp)
    newest = utils.checkpoints_in(folder)[0][1]
    checkpoint_time = os.path.getmtime(newest + '.index')
    train_k = experiments.run_config(exp).update_batch_size
    for k in sorted({row.eval_k for row in exp.rows}):
        csv_path = experiments.eval_csv(args.logdir, exp, k, SMOKE_TASKS if args.smoke else 600)
        if utils.result_complete(csv_path) and os.path.getmtime(csv_path) > checkpoint_time:
            print(f'  evaluation K={k} is up to date: {csv_path}')
            continue
        if run(common + ['--train=False', '--test_set=True', f'--update_batch_size={k}',
                         f'--train_update_batch_size={train_k}']) != 0:
            return False
    return True


def chosen_runs(args):
    """The runs (one per seed) of the experiments --only names, with the reproduction's settings."""
    every = experiments.experiments(args.sine_update_lr, args.mini5shot_meta_batch_size,
                                    args.omniglot_iterations)
    return [run for e in every if e.name in args.selected for run in e.seed_runs()[:args.seeds]]


def reproduce(args):
    """Train and evaluate the chosen experiments, then write the table; the failed ones."""
    if args.smoke:
        make_smoke_sources(args)
    chosen = chosen_runs(args)
    prepare_data(args, {e.datasource for e in chosen})
    failed = []
    start = time.time()
    for i, exp in enumerate(chosen, 1):
        minutes = (time.time() - start) / 60
        print(f'[{i}/{len(chosen)}] {exp.name} ({minutes:.0f} min so far)', flush=True)
        if not train_and_evaluate(exp, args):
            failed.append(exp.name)
            print(f'  {exp.name} failed; going on with the others', flush=True)
    table = make_table.make_table(args.logdir, SMOKE_TASKS if args.smoke else 600)
    out = os.path.join(args.logdir, 'results.md')
    utils.write_atomically(out, table)
    print(table)
    print(f'Wrote {out}' + (f'; failed: {", ".join(failed)}' if failed else ''))
    return failed


def main():
    args = parse_args()
    try:
        failed = reproduce(args)
    except UserError as err:
        sys.exit(f'error: {err}')
    except KeyboardInterrupt:
        print('\ninterrupted: finished steps are kept; run the same command to go on',
              file=sys.stderr)
        sys.exit(130)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
