"""The experiments of the paper's tables: how each is trained and evaluated, and the
paper's number for it. Read by reproduce.py (to run them) and make_table.py (to
report them).

Where the paper and the reference's usage lines differ, the paper's value is used:
sinusoid alpha 0.01 (reference: 0.001, `--sine_update_lr=0.001`), miniImagenet
5-shot meta batch 2 (reference: 4, `--mini5shot_meta_batch_size=4`).
"""
import dataclasses
import os

import results
from config import RunConfig

SINE = ['--datasource=sinusoid', '--norm=None', '--update_batch_size=10']
OMNI5 = ['--datasource=omniglot', '--meta_batch_size=32', '--update_batch_size=1',
         '--update_lr=0.4', '--num_updates=1']
OMNI5_K5 = ['--datasource=omniglot', '--meta_batch_size=32', '--update_batch_size=5',
            '--update_lr=0.4', '--num_updates=1']
OMNI20 = ['--datasource=omniglot', '--num_classes=20', '--meta_batch_size=16',
          '--update_batch_size=1', '--update_lr=0.1', '--num_updates=5']
MINI = ['--datasource=miniimagenet', '--update_lr=0.01', '--num_updates=5', '--num_filters=32',
        '--max_pool=True']


@dataclasses.dataclass
class Row:
    """One cell of the paper: evaluated with K=eval_k, read after `step` inner steps."""
    label: str
    eval_k: int
    step: int
    paper: float            # accuracy in %, or MSE
    paper_ci: float = None  # the paper's +- (None where it gives none)
    note: str = ''          # what a reader needs beside the number
    random_init: bool = False   # the network's fresh initialisation, not the trained one
    in_readme: bool = True  # False: another reading of a paper cell the README shows once


RANDOM_INIT_STEPS = (3, 5, 10)


def random_init_rows(label, k):
    """Rows of the baseline MAML is compared with: the same network freshly initialised,
    adapted by the same inner loop to the same test tasks."""
    return [Row(f'{label}, random init', k, step, None, random_init=True)
            for step in RANDOM_INIT_STEPS]


@dataclasses.dataclass
class Experiment:
    name: str
    datasource: str
    train_flags: list
    iterations: int
    rows: list
    pretrain: bool = False   # the iterations are pretraining (the pretrained baseline)
    seeds: tuple = (0,)      # one run per seed; the table gives the mean and spread across them
    optional: bool = False   # not a cell of the paper: reproduced only when --only names it

    def seed_runs(self):
        """One Experiment per seed: the default seed (0) is this one, seed N is NAME_seedN
        trained with --seed=N."""
        return [self if seed == 0 else dataclasses.replace(
                    self, name=f'{self.name}_seed{seed}',
                    train_flags=self.train_flags + [f'--seed={seed}'],
                    seeds=(seed,))
                for seed in self.seeds]

    def iteration_flags(self, iterations=None):
        n = self.iterations if iterations is None else iterations
        if self.pretrain:
            return [f'--pretrain_iterations={n}', '--metatrain_iterations=0']
        return [f'--metatrain_iterations={n}']


def omniglot_k5_rows(net, paper, ci):
    """A K=5-trained Omniglot model read after the paper's 3 steps and after the 1 step it
    was trained with."""
    label = f'Omniglot 5-way 5-shot{net} (trained at K=5)'
    return [Row(label, 5, 3, paper, ci, in_readme=False),
            Row(label + ', the 1 step it was trained with', 5, 1, paper, ci, in_readme=False)]


def experiments(sine_update_lr=0.01, mini5shot_meta_batch_size=2, omniglot_iterations=60000):
    sine = SINE + [f'--update_lr={sine_update_lr}']
    mini5 = MINI + [f'--meta_batch_size={mini5shot_meta_batch_size}', '--update_batch_size=5']

    def mini_row(label, k, paper, ci):
        return Row(label, k, 10, paper, ci)
    return [
        Experiment('sine_maml', 'sinusoid', sine, 70000, [
            Row('Sinusoid K=5, MAML, MSE after 1 step', 5, 1, 0.67),
            Row('Sinusoid K=5, MAML, MSE after 5 steps', 5, 5, 0.38),
            Row('Sinusoid K=5, MAML, MSE after 10 steps', 5, 10, 0.35)], seeds=(0, 1, 2, 3, 4)),
        Experiment('sine_pretrained', 'sinusoid', sine, 70000, [
            Row('Sinusoid K=5, pretrained, MSE after 1 step', 5, 1, 2.41),
            Row('Sinusoid K=5, pretrained, MSE after 5 steps', 5, 5, 2.23),
            Row('Sinusoid K=5, pretrained, MSE after 10 steps', 5, 10, 2.19)],
            pretrain=True, seeds=(0, 1, 2)),
        Experiment('sine_oracle', 'sinusoid', sine + ['--baseline=oracle'], 70000, [
            Row('Sinusoid K=5, oracle, MSE (no steps needed)', 5, 0, None)]),
        Experiment('omniglot5way', 'omniglot', OMNI5, omniglot_iterations, [
            Row('Omniglot 5-way 1-shot', 1, 3, 98.7, 0.4),
            Row('Omniglot 5-way 5-shot (trained at K=1)', 5, 3, 99.9, 0.1),
            *random_init_rows('Omniglot 5-way 1-shot', 1)], seeds=(0, 1, 2)),
        Experiment('omniglot5way_fc', 'omniglot', OMNI5 + ['--conv=False'], omniglot_iterations, [
            Row('Omniglot 5-way 1-shot, FC net', 1, 3, 89.7, 1.1),
            Row('Omniglot 5-way 5-shot, FC net (trained at K=1)', 5, 3, 97.5, 0.6)]),
        # the other reading of the paper's 5-shot cells: a model trained at K=5
        Experiment('omniglot5way_k5', 'omniglot', OMNI5_K5, omniglot_iterations,
                   omniglot_k5_rows('', 99.9, 0.1)),
        Experiment('omniglot5way_fc_k5', 'omniglot', OMNI5_K5 + ['--conv=False'],
                   omniglot_iterations, omniglot_k5_rows(', FC net', 97.5, 0.6)),
        Experiment('omniglot20way', 'omniglot', OMNI20, omniglot_iterations, [
            Row('Omniglot 20-way 1-shot', 1, 5, 95.8, 0.3),
            Row('Omniglot 20-way 5-shot (trained at K=1)', 5, 5, 98.9, 0.2),
            *random_init_rows('Omniglot 20-way 1-shot', 1)]),
        Experiment('miniimagenet1shot', 'miniimagenet',
                   MINI + ['--meta_batch_size=4', '--update_batch_size=1'], 60000,
                   [mini_row('miniImagenet 5-way 1-shot', 1, 48.70, 1.84),
                    *random_init_rows('miniImagenet 5-way 1-shot', 1)]),
        Experiment('miniimagenet5shot', 'miniimagenet', mini5, 60000,
                   [mini_row('miniImagenet 5-way 5-shot', 5, 63.11, 0.92),
                    *random_init_rows('miniImagenet 5-way 5-shot', 5)]),
        Experiment('miniimagenet1shot_fo', 'miniimagenet',
                   MINI + ['--meta_batch_size=4', '--update_batch_size=1', '--stop_grad=True'],
                   60000, [mini_row('miniImagenet 5-way 1-shot, first order', 1, 48.07, 1.75)]),
        Experiment('miniimagenet5shot_fo', 'miniimagenet', mini5 + ['--stop_grad=True'], 60000,
                   [mini_row('miniImagenet 5-way 5-shot, first order', 5, 63.15, 0.91)]),
        # the meta batch of the original's usage line (the paper's is 2)
        Experiment('miniimagenet5shot_fo_mbs4', 'miniimagenet',
                   MINI + ['--meta_batch_size=4', '--update_batch_size=5', '--stop_grad=True'],
                   60000, [Row('miniImagenet 5-way 5-shot, first order, meta batch 4', 5, 10,
                               63.15, 0.91, in_readme=False)], optional=True),
    ]


def run_config(exp):
    """The RunConfig main.py builds from this experiment's training flags."""
    return RunConfig.from_args(exp.train_flags)


def experiment_folder(logdir, exp, run=None):
    """logs/<name>/<the original's experiment name>, exactly as main.py computes it."""
    return os.path.join(logdir, exp.name, (run or run_config(exp)).exp_name)


def eval_csv(logdir, exp, k, num_tasks=results.EVAL_TASKS, random_init=False):
    """The test evaluation's CSV at K=k (with another number of tasks than 600, or of a
    random initialisation, the file main.py names for that)."""
    run = run_config(exp)
    name = results.eval_basename(k, run.update_lr, results.EVAL_SPLIT, num_tasks, random_init)
    return os.path.join(experiment_folder(logdir, exp, run), name + '.csv')


def evaluations(exp):
    """(K, random_init) of each test evaluation the experiment's rows read."""
    return sorted({(row.eval_k, row.random_init) for row in exp.rows})
