"""Sinusoid results across seeds: per seed and across seeds, from the evaluation pickles.

For each run folder given (e.g. logs/sine_maml logs/sine_maml_seed2 ...), reads the
K-point test evaluation and reports the mean and median MSE after 1, 5 and 10 steps
and the tasks on which repeated steps diverge (after the last step the MSE is not
finite, or above 10, near what predicting zero scores at the largest amplitudes, and
more than twice what it was after the first step); then the mean and standard
deviation of the per-seed means, over the seeds without diverging tasks and over all.
Give the runs of one method at a time. With --out, a figure of the mean MSE against the
number of steps, one line per seed (needs matplotlib).

  python -m scripts.sinusoid_seeds logs/sine_maml logs/sine_maml_seed* \
      --out logs/figures/sinusoid_seeds.png
"""
import argparse
import glob
import os

import numpy as np

import results
from scripts import figures
from utils import UserError

STEPS = (1, 5, 10)


def load(run_dir, k, update_lr):
    """(label, per-task MSE [tasks, steps + 1]) of a run folder's K-point test evaluation."""
    name = results.eval_basename(k, update_lr) + '.csv'
    found = glob.glob(os.path.join(run_dir, '*', name))
    if not found:
        raise UserError(f'no {name} under {run_dir}; evaluate the run first')
    mses = np.asarray(results.read_eval_pickle(found[0])['mses'])
    return os.path.basename(run_dir.rstrip('/')), mses


def seed_row(label, mses):
    diverged = results.count_diverging(mses)
    means = [mses[:, s].mean() for s in STEPS]
    medians = [np.median(results.nan_as_inf(mses)[:, s]) for s in STEPS]
    cells = ' | '.join(f'{m:.3g}' for m in means) + ' | ' + ' | '.join(f'{m:.3g}' for m in medians)
    return diverged, means, f'| {label} | {cells} | {diverged} |'


def across(rows, which):
    means = np.array([r[1] for r in rows])
    if len(means) == 0:
        return f'| across seeds, {which} (none) | - | - | - | | | | |'
    with np.errstate(invalid='ignore'):          # a seed whose mean is inf
        text = ' | '.join(f'{m:.3g} +- {s:.2g}' for m, s in zip(means.mean(0), means.std(0)))
    return f'| across {len(means)} seeds, {which} | {text} | | | | |'


def table(runs):
    header = ('| run | mean, 1 step | mean, 5 steps | mean, 10 steps | median, 1 | median, 5 | '
              'median, 10 | diverging tasks |\n|---|---|---|---|---|---|---|---|')
    rows = [seed_row(label, mses) for label, mses in runs]
    lines = [header] + [r[2] for r in rows]
    lines.append(across([r for r in rows if r[0] == 0], 'no diverging task'))
    lines.append(across(rows, 'all'))
    return '\n'.join(lines) + '\n'


PAPER_MAML = {1: 0.67, 5: 0.38, 10: 0.35}     # the paper's K=5 MAML MSEs (Figure 3 / text)


def plot(runs, out, paper=None):
    """Mean (left) and median (right) MSE over the tasks against the inner step, one line
    per seed; a diverging task lifts a seed's mean out of the plot but not its median."""
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, reduce) in zip(axes, (('mean', np.mean), ('median', np.median))):
        for label, mses in runs:
            ax.plot(np.arange(mses.shape[1]), reduce(results.nan_as_inf(mses), axis=0),
                    marker='o', ms=3, label=label)
        if paper and title == 'mean':
            ax.plot(list(paper), list(paper.values()), 'k*', ms=9, label='paper (mean)')
        ax.set_yscale('log')
        ax.set_ylim(0.05, 20)
        ax.set_xlabel('inner gradient steps')
        ax.set_title(f'{title} MSE over {mses.shape[0]} tasks')
    axes[0].set_ylabel('MSE')
    axes[0].legend(fontsize=7, loc='lower left')
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', help='run folders (logs/NAME)')
    parser.add_argument('--k', type=int, default=5)
    parser.add_argument('--update_lr', type=float, default=0.01)
    parser.add_argument('--out', help='write the figure here')
    parser.add_argument('--paper', action='store_true',
                        help="mark the paper's MAML numbers in the figure")
    args = parser.parse_args()
    if args.out:
        args.out = figures.output_path(args.out)
    runs = [load(r, args.k, args.update_lr) for r in args.runs]
    print(table(runs))
    if args.out:
        plot(runs, args.out, PAPER_MAML if args.paper else None)
        print(f'Wrote {args.out}')


if __name__ == '__main__':
    figures.run(main)
