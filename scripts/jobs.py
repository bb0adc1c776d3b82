"""Where the reproduction's jobs run, as its flags say: on this machine, up to --jobs at
a time (scripts/local_jobs.py), or as SLURM jobs (scripts/slurm_jobs.py). A job is one
experiment: its training, then its evaluations (steps.train_and_evaluate).
"""
import argparse

from scripts.local_jobs import LocalRunner
from scripts.slurm_jobs import SlurmRunner

# SLURM's options: the defaults used with --cluster slurm (None: SLURM's own), and the
# lowest value each takes
SLURM_DEFAULTS = {'partition': None, 'gpus_per_job': 1, 'cpus_per_job': None,
                  'time_limit': 24 * 60, 'sbatch': ()}
SLURM_MINIMUMS = {'gpus_per_job': 0, 'cpus_per_job': 1, 'time_limit': 1}


def add_arguments(parser):
    group = parser.add_argument_group('where the jobs run')
    group.add_argument('--jobs', type=int, default=1,
                       help='experiments at a time on this machine (each sees its own GPU)')
    group.add_argument('--cluster', choices=['local', 'slurm'], default='local',
                       help='slurm: one SLURM job per experiment, through submitit; the '
                            'options below are for it')
    group.add_argument('--partition', help='SLURM partition')
    group.add_argument('--gpus_per_job', type=int, help='default: 1')
    group.add_argument('--cpus_per_job', type=int, help="default: the partition's")
    group.add_argument('--time_limit', type=int,
                       help='minutes per job before it is requeued (it resumes; default: 1440)')
    group.add_argument('--sbatch', action='append', metavar='KEY=VALUE', type=sbatch_option,
                       help='another sbatch option, e.g. --sbatch account=abc (repeatable)')


def check_arguments(parser, args):
    """Refuse SLURM's options without --cluster slurm (the jobs would run here instead),
    then fill in their defaults."""
    given = [name for name in SLURM_DEFAULTS if getattr(args, name) is not None]
    if given and args.cluster != 'slurm':
        named = ', '.join('--' + name for name in given)
        parser.error(f'{named} {"is" if len(given) == 1 else "are"} for SLURM jobs: add '
                     f'--cluster slurm (without it every experiment runs on this machine)')
    for name, default in SLURM_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def sbatch_option(text):
    """--sbatch KEY=VALUE as (key, value), the key as submitit spells sbatch's options."""
    key, sep, value = text.partition('=')
    if not sep or not key.strip('-'):
        raise argparse.ArgumentTypeError(f'takes KEY=VALUE (got {text!r})')
    return key.lstrip('-').replace('-', '_'), value


def runner(args):
    return SlurmRunner(args) if args.cluster == 'slurm' else LocalRunner(args)


def resume_hint(args):
    if args.cluster == 'slurm':
        return ('the submitted jobs go on; run the same command to follow them and write '
                'the table')
    return 'run the same command to go on'
