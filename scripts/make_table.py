"""Write the results table: the paper's number beside ours, from our evaluation CSVs.

  python -m scripts.make_table --readme README.md --out logs/results.md

The README's table holds each cell's latest result; the --out table also every earlier
evaluation of a run still training then (interim rows) and the per-seed detail.

A cell whose evaluation does not exist says 'not yet run' (or 'not yet evaluated' while its
training is under way); nothing is filled from the paper.
"""
import argparse
import dataclasses
import os

import numpy as np

import results
import run_folder
import utils
from scripts import experiments
from scripts.experiments import Experiment, Row
from utils import UserError, exit_on_user_error

REFERENCE = Experiment('miniimagenet1shot_reference', 'miniimagenet',
                       experiments.MINI + ['--meta_batch_size=4', '--update_batch_size=1'], 59000,
                       [Row('miniImagenet 5-way 1-shot, released checkpoint model59000',
                            1, 10, 48.70, 1.84, in_readme=False)])
README_END = '<!-- /results -->'
HEADER = ('| experiment | paper | ours | step | iterations | inside paper interval | run | note |\n'
          '|---|---|---|---|---|---|---|---|')


def iterations_trained(csv_path, exp, stored, row):
    """The iterations behind an evaluation: the checkpoint its pickle (`stored`) names.
    Without an evaluation (or one from before pickles named it): the run's latest checkpoint."""
    if exp is REFERENCE:
        return '59000 (released by the original authors)'
    if row.random_init:
        return '0 (random init)'
    iteration = run_folder.checkpoint_iteration((stored or {}).get('checkpoint') or '')
    if iteration is not None:
        return str(iteration)
    found = run_folder.checkpoints_in(os.path.dirname(csv_path))
    return str(found[0][0]) if found else 'none'


def fmt(value, ci, percent):
    """Accuracy in % with 2 decimals; MSE with 3 significant digits and its interval
    with 2 (the oracle's MSE is about 0.001)."""
    if value is None:
        return '-'
    spec, ci_spec, scale = ('.2f', '.2f', 100) if percent else ('.3g', '.2g', 1)
    return f'{value * scale:{spec}}' + (f' +- {ci * scale:{ci_spec}}' if ci is not None else '')


def paper_cell(row):
    if row.paper is None:
        return '-'
    return f'{row.paper:.2f}' + (f' +- {row.paper_ci:.2f}' if row.paper_ci is not None else '')


def test_result(path, num_tasks):
    """The evaluation at `path`: (pickle contents, CSV columns) or (None, None) when there is
    none, and why it is unusable or ''; a damaged one is a UserError."""
    if not os.path.isfile(path):
        return None, None, ''
    stored, columns = results.read_result(path)
    if stored.get('split', 'test') != 'test' or len(stored['mses']) != num_tasks:
        return stored, columns, f'not a {num_tasks}-task test result: {path}'
    return stored, columns, ''


def maml_at_step(logdir, exp, row, num_tasks):
    """The note of a random-initialisation row: MAML's result after the same steps."""
    path = experiments.eval_csv(logdir, exp, row.eval_k, num_tasks)
    stored, columns, unusable = test_result(path, num_tasks)
    if stored is None or unusable:
        return 'MAML: not yet evaluated'
    means, _, ci95 = columns
    steps = 'step' if row.step == 1 else 'steps'
    return f'MAML after {row.step} {steps}: {fmt(means[row.step], ci95[row.step], True)}'


def inside_interval(row, value):
    """'yes' or 'no': whether `value` (in the paper's unit) lies in the paper's interval."""
    if row.paper_ci is None:
        return '-'
    return 'yes' if abs(value - row.paper) <= row.paper_ci else 'no'


def listed(values):
    return ', '.join(str(v) for v in values)


def table_row(logdir, exp, row, num_tasks=results.EVAL_TASKS, detail=True):
    if len(exp.seeds) > 1:
        return seeds_row(logdir, exp, row, num_tasks, detail)
    return run_row(logdir, exp, row, num_tasks, exp.name, detail)


def run_row(logdir, exp, row, num_tasks, run_label, detail=True):
    """The row of one run's evaluation (run_label fills the run column), and with `detail`
    after it a row for each earlier checkpoint's evaluation that a later one set aside."""
    path = experiments.eval_csv(logdir, exp, row.eval_k, num_tasks, row.random_init)
    lines = [result_row(logdir, path, exp, row, num_tasks, run_label, row.label)]
    if detail:
        lines += earlier_rows(logdir, exp, row, num_tasks, run_label, row.label)
    return '\n'.join(lines)


def earlier_rows(logdir, run, row, num_tasks, run_label, label):
    """A row for each evaluation of an earlier checkpoint of `run` that a later one set
    aside, oldest first."""
    path = experiments.eval_csv(logdir, run, row.eval_k, num_tasks, row.random_init)
    return [result_row(logdir, earlier, run, row, num_tasks, run_label,
                       f'{label}, at {iterations} iterations')
            for iterations, earlier in results.set_aside_results(path)]


def result_row(logdir, path, exp, row, num_tasks, run_label, label):
    """The row of the evaluation at `path`; one of a checkpoint before the run's last
    iteration is marked interim."""
    percent = exp.datasource != 'sinusoid'
    stored, columns, unusable = test_result(path, num_tasks)
    iterations = iterations_trained(path, exp, stored, row)
    note = row.note
    if row.random_init and stored is not None:
        note = maml_at_step(logdir, exp, row, num_tasks)
    if stored is not None and iterations.isdigit() and int(iterations) < exp.iterations:
        interim = f'interim: {iterations} of {exp.iterations} iterations'
        note = '; '.join(filter(None, [interim, note]))
    start = f'| {label} | {paper_cell(row)} |'
    end = f'{row.step} | {iterations} | - | {run_label} | {note} |'
    if stored is None:
        return f'{start} {"not yet run" if iterations == "none" else "not yet evaluated"} | {end}'
    if unusable:
        return f'{start} {unusable} | {end}'
    means, _, ci95 = columns
    inside = inside_interval(row, means[row.step] * (100 if percent else 1))
    ours = fmt(means[row.step], ci95[row.step], percent)
    return f'{start} {ours} | {row.step} | {iterations} | {inside} | {run_label} | {note} |'


def seed_results(logdir, exp, row, num_tasks):
    """{seed: (per-task values [tasks, steps + 1], pickle, CSV path, the CSV's 95%
    intervals)} of each seed run's
    evaluation that `row` reads."""
    found = {}
    for run in exp.seed_runs():
        path = experiments.eval_csv(logdir, run, row.eval_k, num_tasks, row.random_init)
        stored, columns, unusable = test_result(path, num_tasks)
        if stored is not None and not unusable:
            found[run.seeds[0]] = (np.asarray(stored['mses']), stored, path, columns[2])
    return found


def seeds_row(logdir, exp, row, num_tasks, detail=True):
    """An experiment trained with several seeds: the mean and standard deviation of the
    per-seed means; the note names the seeds not yet evaluated or evaluated before the
    last iteration."""
    found = seed_results(logdir, exp, row, num_tasks)
    runs = f'{exp.name} (seeds {listed(exp.seeds)})'
    if not found:
        return run_row(logdir, exp, row, num_tasks, runs, detail)
    if exp.datasource == 'sinusoid':
        ours, inside, note = sinusoid_seeds_cells(found, num_tasks, row.step, detail)
    else:
        ours, inside, note = accuracy_seeds_cells(logdir, exp, row, found, num_tasks)
    iterations = {seed: iterations_trained(path, exp, stored, row)
                  for seed, (_, stored, path, _) in found.items()}
    early = [s for s, n in iterations.items() if n.isdigit() and int(n) < exp.iterations]
    missing = [s for s in exp.seeds if s not in found]
    notes = [f'interim: seed {listed(early)} evaluated before iteration {exp.iterations}'
             if early else '',
             f'seed {listed(missing)}: not yet evaluated' if missing else '', note]
    values = list(iterations.values())
    shown = values[0] if len(set(values)) == 1 else listed(values)
    lines = [f'| {row.label} | {paper_cell(row)} | {ours} | {row.step} | {shown} | {inside} '
             f'| {runs} | {"; ".join(filter(None, notes))} |']
    for run in exp.seed_runs() if detail else []:
        lines += earlier_rows(logdir, run, row, num_tasks, run.name,
                              f'{row.label}, seed {run.seeds[0]}')
    return '\n'.join(lines)


def seed_means(found, step):
    seeds = list(found)
    with np.errstate(invalid='ignore'):
        return seeds, np.array([found[s][0][:, step].mean() for s in seeds])


def accuracy_across_seeds(found, step):
    """Accuracy in %: mean +- sd over the seeds, or one seed's result +- its 95% interval."""
    seeds, means = seed_means(found, step)
    if len(seeds) == 1:
        return f'{fmt(means[0], found[seeds[0]][3][step], True)} (seed {seeds[0]} only)'
    return f'{means.mean() * 100:.2f} +- {means.std() * 100:.2f} (sd over {len(seeds)} seeds)'


def accuracy_seeds_cells(logdir, exp, row, found, num_tasks):
    """Accuracy across seeds, whether its mean is inside the paper's interval, and each
    seed's result with its 95% interval (a random initialisation's note: MAML's result
    across seeds after the same steps)."""
    seeds, means = seed_means(found, row.step)
    inside = inside_interval(row, means.mean() * 100)
    per_seed = listed(fmt(m, found[s][3][row.step], True) for s, m in zip(seeds, means))
    note = f'per seed ({listed(seeds)}): {per_seed}' if len(seeds) > 1 else ''
    if row.random_init:
        maml = seed_results(logdir, exp, dataclasses.replace(row, random_init=False),
                            num_tasks)
        steps = 'step' if row.step == 1 else 'steps'
        maml_cell = accuracy_across_seeds(maml, row.step) if maml else 'not yet evaluated'
        note = '; '.join(filter(None, [note, f'MAML after {row.step} {steps}: {maml_cell}']))
    return accuracy_across_seeds(found, row.step), inside, note


def sinusoid_seeds_cells(found, num_tasks, step, detail):
    """MSE across seeds: mean +- sd, and the median of all seeds' tasks beside it where
    diverging tasks blow up the mean (alone where they make it not finite); in the note
    the diverging tasks (with `detail`: per seed) and the figures over the seeds without
    any."""
    seeds, means = seed_means(found, step)
    diverging = np.array([results.count_diverging(found[s][0]) for s in seeds])
    with np.errstate(invalid='ignore'):
        ours = f'{means.mean():.3g} +- {means.std():.2g} (sd over {len(seeds)} seeds)'
    median = f'median {median_mse(found, step):.3g} over {num_tasks * len(seeds)} tasks'
    if not np.isfinite(means).all():
        not_finite = listed(s for s, m in zip(seeds, means) if not np.isfinite(m))
        ours = f'{median} (the mean is not finite: tasks of seed {not_finite} diverge)'
    elif blown_up(found, step):
        ours += f'; {median}'
    note = f'diverging tasks: {diverging.sum()} of {num_tasks * len(seeds)}'
    if detail:
        note = (f'diverging tasks per seed ({listed(seeds)}): {listed(diverging)} '
                f'({diverging.sum()} of {num_tasks * len(seeds)})')
    steady = [(seed, m) for seed, m, d in zip(seeds, means, diverging) if d == 0]
    if len(steady) == 1 and diverging.sum():
        note += f'; seed {steady[0][0]}, the one without: {steady[0][1]:.3g}'
    elif steady and diverging.sum():
        values = np.array([m for _, m in steady])
        note += f'; over the {len(steady)} seeds without: {values.mean():.3g} +- {values.std():.2g}'
    return ours, '-', note


def blown_up(found, step):
    """Whether the diverging tasks more than double the mean MSE of all seeds' tasks."""
    values = np.concatenate([found[s][0][:, step] for s in found])
    steady = np.concatenate([found[s][0][~results.diverging(found[s][0]), step] for s in found])
    return values.mean() > 2 * steady.mean()


def median_mse(found, step):
    """The median MSE of every seed's tasks after `step` steps (a NaN counted as
    diverging, above all)."""
    pooled = np.concatenate([found[s][0][:, step] for s in found]).astype(np.float64)
    return float(np.median(results.nan_as_inf(pooled)))


def make_table(logdir, num_tasks=results.EVAL_TASKS, detail=True):
    """The results table from the test evaluations of num_tasks tasks. Without `detail`
    (the README's): each of the paper's cells once, with its latest result, and the
    diverging sinusoid tasks over all seeds; with it, also the other readings of a
    cell, the random-initialisation baseline, earlier evaluations and per-seed detail."""
    lines = [HEADER]
    for exp in experiments.experiments() + [REFERENCE]:
        lines += [table_row(logdir, exp, row, num_tasks, detail) for row in exp.rows
                  if detail or in_readme(row)]
    return '\n'.join(lines) + '\n'


def in_readme(row):
    return row.in_readme and row.paper is not None and not row.random_init


def commands(readme=False):
    """Each run's training command, as the 'run' column names it (`readme`: only the
    runs of the README's table)."""
    lines = []
    for exp in experiments.experiments():
        if readme and not any(in_readme(row) for row in exp.rows):
            continue
        flags = ' '.join(exp.train_flags + exp.iteration_flags())
        line = f'- `{exp.name}`: `python main.py {flags} --logdir=logs/{exp.name}`'
        if len(exp.seeds) > 1:
            line += (f'; seeds {listed(exp.seeds[1:])}: the same with `--seed=N` '
                     f'and `--logdir=logs/{exp.name}_seedN`')
        lines.append(line)
    return '\n'.join(lines) + '\n'


def update_readme(path, block):
    """Put `block` between the README's results markers."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:
        raise UserError(f'cannot read {path} ({err.strerror})') from None
    start = text.find('<!-- results')
    end = text.find(README_END, start)
    if start < 0 or end < 0 or text.find('-->', start) > end:
        raise UserError(f'{path} lacks the results markers (<!-- results ... --> and '
                        f'{README_END}); nothing was written')
    start = text.index('-->', start) + len('-->\n')
    utils.write_atomically(path, text[:start] + block + text[end:])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--logdir', default='logs')
    parser.add_argument('--out', default=None, help='also write the table here')
    parser.add_argument('--commands', action='store_true', help="also list each run's command")
    parser.add_argument('--readme', help='replace the results block of this README')
    args = parser.parse_args()
    print(exit_on_user_error(lambda: write_tables(args)))


def write_tables(args):
    """The table (and the commands with --commands), written where the flags say."""
    if not os.path.isdir(args.logdir):
        raise UserError(f'--logdir={args.logdir} is not a folder; nothing was written')
    table = make_table(args.logdir) + ('\n' + commands() if args.commands else '')
    if args.readme:
        update_readme(args.readme, make_table(args.logdir, detail=False) + '\nThe `run` '
                      'column names the training command (`--logdir=logs/RUN`):\n\n'
                      + commands(readme=True))
    if args.out:
        utils.write_atomically(args.out, table)
    return table


if __name__ == '__main__':
    main()
