"""Learning curves from TensorBoard event files: post-update loss or accuracy against
iteration, one line per run. Needs matplotlib (pip install -r requirements-plots.txt).

  python -m scripts.plot_curves logs/sine_maml logs/sine_pretrained \
      --tag 'Post-update loss, step 1' --out logs/figures/sinusoid_curves.png
"""
import argparse
import glob
import os

from scripts import figures
from tf_quiet import tf
from utils import UserError


def event_file_time(path):
    """The creation time TensorFlow writes into an event file's name
    (events.out.tfevents.<unix time>.<host>); file mtimes are all alike in a fresh clone."""
    return int(os.path.basename(path).split('.')[3])


def read_scalars(run_dir, tag):
    """(steps, values) of `tag` from every event file below run_dir, sorted by step;
    a resumed run's later files override earlier values of the same step."""
    points = {}
    files = glob.glob(os.path.join(run_dir, '**', 'events.out.tfevents.*'), recursive=True)
    for path in sorted(files, key=event_file_time):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    points[event.step] = value.simple_value
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def moving_average(values, window):
    """Mean of each value and the window-1 before it (fewer at the start), so a
    noisy one-batch-per-summary curve can be read; window 1 returns the values."""
    if window < 1:
        raise ValueError(f'window must be at least 1, got {window}')
    averages, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        averages.append(total / min(i + 1, window))
    return averages


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+',
                        help='run folders (searched recursively for event files)')
    parser.add_argument('--tag', default='Post-update loss, step 1')
    parser.add_argument('--out', default='logs/figures/curves.png')
    parser.add_argument('--log_y', action='store_true')
    parser.add_argument('--smooth', type=int, default=1, metavar='N',
                        help='also draw the moving average over N summaries (raw curve faint)')
    args = parser.parse_args()
    if args.smooth < 1:
        parser.error(f'--smooth must be at least 1, got {args.smooth}')
    args.out = figures.output_path(args.out)
    curves = []
    for run in args.runs:
        steps, values = read_scalars(run, args.tag)
        if not steps:
            raise UserError(f'no "{args.tag}" summaries under {run}')
        curves.append((os.path.basename(run.rstrip('/')), steps, values))
    draw(curves, args)
    print(f'Wrote {args.out}')


def draw(curves, args):
    """One line per (label, steps, values), smoothed with --smooth, saved to --out."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, steps, values in curves:
        if args.smooth > 1:
            raw, = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
            ax.plot(steps, moving_average(values, args.smooth), color=raw.get_color(),
                    label=f'{label} (mean of {args.smooth})')
        else:
            ax.plot(steps, values, label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel(args.tag)
    if args.log_y:
        ax.set_yscale('log')
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    fig.savefig(args.out, dpi=100)


if __name__ == '__main__':
    figures.run(main)
