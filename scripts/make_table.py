"""Write the results table: the paper's number beside ours, from our evaluation CSVs.

  python -m scripts.make_table [--logdir logs] [--out logs/results.md]

A cell whose evaluation does not exist says 'not yet run' (or 'not yet evaluated' while its
training is under way); nothing is filled from the paper.
"""
import argparse
import os

import tensorflow.compat.v1 as tf

import utils
from scripts import experiments
from scripts.experiments import Experiment, Row

REFERENCE = Experiment('miniimagenet1shot_reference', 'miniimagenet',
                       experiments.MINI + ['--meta_batch_size=4', '--update_batch_size=1'], 59000,
                       [Row('miniImagenet 5-way 1-shot, released checkpoint model59000', 1, 10, 48.70, 1.84)])
README_END = '<!-- /results -->'
HEADER = ('| experiment | paper | ours | step | iterations | inside paper interval | run | note |\n'
          '|---|---|---|---|---|---|---|---|')


def iterations_trained(csv_path, exp, stored):
    """The iterations behind an evaluation: the checkpoint its pickle (`stored`) names.
    Without an evaluation (or one from before pickles named it): the run's latest checkpoint."""
    if exp is REFERENCE:
        return '59000 (released by the original authors)'
    checkpoint = stored.get('checkpoint') if stored else None
    if checkpoint:
        return checkpoint[len('model'):]
    folder = os.path.dirname(csv_path)
    state = tf.train.get_checkpoint_state(folder) if os.path.isdir(folder) else None
    if state is None:
        return 'none'
    return os.path.basename(state.model_checkpoint_path)[len('model'):]


def fmt(value, ci, percent):
    """Accuracy in % with 2 decimals; MSE with 3 significant digits and its interval
    with 2 (the oracle's MSE is about 0.001)."""
    if value is None:
        return '-'
    spec, ci_spec, scale = ('.2f', '.2f', 100) if percent else ('.3g', '.2g', 1)
    return f'{value * scale:{spec}}' + (f' +- {ci * scale:{ci_spec}}' if ci is not None else '')


def table_row(logdir, exp, row, num_tasks=utils.EVAL_TASKS):
    percent = exp.datasource != 'sinusoid'
    paper = '-' if row.paper is None else (
        f'{row.paper:.2f}' + (f' +- {row.paper_ci:.2f}' if row.paper_ci is not None else ''))
    path = experiments.eval_csv(logdir, exp, row.eval_k, num_tasks)
    stored = utils.read_eval_pickle(path) if os.path.isfile(path) else None
    iterations = iterations_trained(path, exp, stored)
    if stored is None:
        status = 'not yet run' if iterations == 'none' else 'not yet evaluated'
        return f'| {row.label} | {paper} | {status} | {row.step} | {iterations} | - | {exp.name} | {row.note} |'
    if stored.get('split', 'test') != 'test' or len(stored['mses']) != num_tasks:
        return (f'| {row.label} | {paper} | not a {num_tasks}-task test result: {path} | {row.step} | '
                f'{iterations} | - | {exp.name} | {row.note} |')
    means, _, ci95 = utils.read_eval_csv(path)
    ours = fmt(means[row.step], ci95[row.step], percent)
    inside = '-'
    if row.paper_ci is not None:
        value = means[row.step] * (100 if percent else 1)
        inside = 'yes' if abs(value - row.paper) <= row.paper_ci else 'no'
    return f'| {row.label} | {paper} | {ours} | {row.step} | {iterations} | {inside} | {exp.name} | {row.note} |'


def make_table(logdir, num_tasks=utils.EVAL_TASKS):
    """The results table from the test evaluations of num_tasks tasks."""
    lines = [HEADER]
    for exp in experiments.experiments() + [REFERENCE]:
        lines += [table_row(logdir, exp, row, num_tasks) for row in exp.rows]
    return '\n'.join(lines) + '\n'


def commands():
    """Each run's training command, as the 'run' column names it."""
    lines = []
    for exp in experiments.experiments():
        flags = ' '.join(exp.train_flags + exp.iteration_flags())
        lines.append(f'- `{exp.name}`: `python main.py {flags} --logdir=logs/{exp.name}`')
    return '\n'.join(lines) + '\n'


def update_readme(path, block):
    """Put `block` between the README's results markers."""
    with open(path) as f:
        text = f.read()
    start = text.index('<!-- results')
    start = text.index('-->', start) + len('-->\n')
    end = text.index(README_END, start)
    with open(path, 'w') as f:
        f.write(text[:start] + block + text[end:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--logdir', default='logs')
    parser.add_argument('--out', default=None, help='also write the table here')
    parser.add_argument('--commands', action='store_true', help="also list each run's command")
    parser.add_argument('--readme', help='replace the results block of this README')
    args = parser.parse_args()
    table = make_table(args.logdir) + ('\n' + commands() if args.commands else '')
    if args.readme:
        update_readme(args.readme, make_table(args.logdir) + '\nThe `run` column names the '
                      'training command (`--logdir=logs/RUN`):\n\n' + commands())
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)


if __name__ == '__main__':
    main()
