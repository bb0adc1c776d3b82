"""Train and evaluate every experiment of the paper's tables, then write the table.

  bash scripts/reproduce_all.sh                         # everything, one at a time
  bash scripts/reproduce_all.sh --only omniglot5way     # a subset (comma-separated)
  bash scripts/reproduce_all.sh --omniglot_source DIR   # prepare Omniglot from local zips first
  bash scripts/reproduce_all.sh --smoke                 # the whole chain on tiny synthetic data
  bash scripts/reproduce_all.sh --jobs 4                # 4 experiments at a time (one GPU each)
  bash scripts/reproduce_all.sh --cluster slurm --partition gpu --time_limit 240

Each experiment (its training, then its evaluations) is one job. Finished experiments
are skipped and interrupted ones resume from their last checkpoint (main.py does both);
an evaluation is skipped when its CSV is newer than the checkpoint. Running the same
command again picks up where anything stopped.
"""
import argparse
import os
import sys

import run_folder
import utils
from data.prep_utils import source_folder
from scripts import experiments, jobs, make_table
from scripts.steps import ROOT, SMOKE_TASKS, run
from utils import UserError, exit_on_user_error

# the lowest value each numeric option takes
MINIMUMS = {'jobs': 1, 'smoke_iterations': 1, 'mini5shot_meta_batch_size': 1,
            'omniglot_iterations': 1, 'seeds': 1}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    every = experiments.experiments()
    names = [e.name for e in every]
    parser.add_argument('--only', help='comma-separated subset of: ' + ', '.join(names)
                        + ' (default: all but the optional ' + ', '.join(
                            e.name for e in every if e.optional) + ')')
    parser.add_argument('--logdir', default=None, help='default: logs (smoke: logs/smoke)')
    parser.add_argument('--data_dir', default=os.path.join(ROOT, 'data'))
    parser.add_argument('--omniglot_source', type=source_folder,
                        help='folder with the Omniglot zips, to prepare the data')
    parser.add_argument('--miniimagenet_source', type=source_folder,
                        help='folder with the miniImagenet CSVs and images')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny synthetic data, --smoke_iterations each')
    parser.add_argument('--smoke_iterations', type=int, default=10)
    parser.add_argument('--sine_update_lr', type=float, default=0.01,
                        help="reference's usage line: 0.001")
    parser.add_argument('--mini5shot_meta_batch_size', type=int, default=2,
                        help="reference's usage line: 4")
    parser.add_argument('--omniglot_iterations', type=int, default=60000)
    parser.add_argument('--seeds', type=int, default=None,
                        help='train only the first N seeds of the experiments run with several '
                             '(default: all, e.g. 5 for the sinusoid MAML)')
    jobs.add_arguments(parser)
    args = parser.parse_args(argv)
    selected = ([n.strip() for n in args.only.split(',') if n.strip()] if args.only
                else [e.name for e in every if not e.optional])
    unknown = sorted(set(selected) - set(names))
    if unknown:
        parser.error(f'unknown experiment {", ".join(unknown)}; choose from {", ".join(names)}')
    check_numbers(parser, args)
    jobs.check_arguments(parser, args)
    args.selected = selected
    args.logdir = os.path.abspath(args.logdir or os.path.join(ROOT, 'logs',
                                                              'smoke' if args.smoke else ''))
    return args


def check_numbers(parser, args):
    """Refuse a number below what it can be before anything runs: --seeds=0 would
    train nothing and a negative one drop seeds from the end, unsaid."""
    for name, lowest in {**MINIMUMS, **jobs.SLURM_MINIMUMS}.items():
        value = getattr(args, name)
        if value is not None and value < lowest:
            parser.error(f'--{name} must be at least {lowest} (got {value})')
    if args.sine_update_lr <= 0:
        parser.error(f'--sine_update_lr must be positive (got {args.sine_update_lr})')


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


def chosen_runs(args):
    """The runs (one per seed) of the experiments --only names, with the reproduction's settings."""
    every = experiments.experiments(args.sine_update_lr, args.mini5shot_meta_batch_size,
                                    args.omniglot_iterations)
    return [run for e in every if e.name in args.selected for run in e.seed_runs()[:args.seeds]]


def reproduce(args):
    """Run the chosen experiments as jobs, then write the table; the failed experiments."""
    if args.smoke:
        make_smoke_sources(args)
    chosen = chosen_runs(args)
    prepare_data(args, {e.datasource for e in chosen})
    failed = jobs.runner(args).run_all(chosen)
    table = make_table.make_table(args.logdir, SMOKE_TASKS if args.smoke else 600)
    out = os.path.join(args.logdir, 'results.md')
    utils.write_atomically(out, table)
    print(table)
    print(f'Wrote {out}')
    for name, log in failed:
        print(f'failed: {name} (log: {log})', file=sys.stderr)
    return failed


def main(argv=None):
    args = parse_args(argv)
    failed = exit_on_user_error(
        lambda: reproduce(args),
        interrupted=f'\ninterrupted: finished steps are kept; {jobs.resume_hint(args)}',
        os_error=lambda err: f'; {run_folder.write_failure_advice(err)}')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
