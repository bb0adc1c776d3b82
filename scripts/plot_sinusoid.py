"""The paper's sinusoid figure: a task's true function, its K points, and the
prediction before adaptation and after 1 and 10 steps, MAML beside the pretrained
baseline. Needs matplotlib (pip install -r requirements-plots.txt).

  python -m scripts.plot_sinusoid --maml logs/sine_maml/EXP/model70000 \
      --pretrained logs/sine_pretrained/EXP/model70000 --out logs/figures/sinusoid.png
"""
import argparse
import os

import numpy as np

import data_generator
import maml
from scripts import figures
from tf_quiet import tf
from utils import UserError

STEPS_SHOWN = (0, 1, 10)


def sinusoid_predictions(checkpoint, task, grid, update_lr, steps=10):
    """Predictions on `grid` [n] after 0..steps inner steps on the task's support set:
    [steps+1, n]."""
    k = task['inputa'].shape[1]
    cfg = maml.ModelConfig(dim_input=1, dim_output=1, loss='mse', update_lr=update_lr,
                           update_batch_size=k, norm='None')
    graph = maml.build_graph(cfg, steps)
    with tf.Session() as sess:
        try:
            maml.restore_variables(sess, checkpoint, maml.model_variables(), require_all=True)
        except (tf.errors.OpError, ValueError):
            raise UserError(f'checkpoint {checkpoint} is missing or unreadable') from None
        batch = dict(task, inputb=grid[None, :, None], labelb=np.zeros((1, len(grid), 1)))
        return sess.run(graph.outputsb, graph.feed(batch))[0, :, :, 0]


def sample_task(k, seed):
    return data_generator.SinusoidTasks().sample(data_generator.batch_rng(seed), 1, 'test', k, 0)


def plot(task, grid, curves, out):
    plt = figures.pyplot()
    function = data_generator.SinusoidTasks.function
    truth = function(grid[None, :, None], task['amp'], task['phase'])[0, :, 0]
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), sharey=True)
    for ax, (title, preds) in zip(np.atleast_1d(axes), curves.items()):
        ax.plot(grid, truth, 'r', label='ground truth')
        for step, style in zip(STEPS_SHOWN, (':', '--', '-')):
            label = f'{step} grad steps' if step else 'pre-update'
            ax.plot(grid, preds[step], 'g' + style, label=label)
        ax.plot(task['inputa'][0, :, 0], task['labela'][0, :, 0], 'k^',
                label='K points used for grad')
        ax.set_title(title)
        ax.set_xlim(-5, 5)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc='lower left')
    fig.tight_layout()
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    fig.savefig(out, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--maml', required=True, help='MAML checkpoint prefix')
    parser.add_argument('--pretrained', help='pretrained-baseline checkpoint prefix')
    parser.add_argument('--k', type=int, default=5)
    parser.add_argument('--update_lr', type=float, default=0.01)
    parser.add_argument('--seed', type=int, default=0, help='which task to draw')
    parser.add_argument('--out', default='logs/figures/sinusoid.png')
    args = parser.parse_args()
    if args.k < 1 or args.seed < 0 or args.update_lr <= 0:
        parser.error(f'--k must be at least 1, --seed at least 0 and --update_lr positive '
                     f'(got {args.k}, {args.seed}, {args.update_lr})')
    args.out = figures.output_path(args.out)
    task, grid = sample_task(args.k, args.seed), np.linspace(-5, 5, 200)
    curves = {'MAML': sinusoid_predictions(args.maml, task, grid, args.update_lr)}
    if args.pretrained:
        curves['pretrained'] = sinusoid_predictions(args.pretrained, task, grid, args.update_lr)
    plot(task, grid, curves, args.out)
    print(f'Wrote {args.out} (task: amplitude {task["amp"][0]:.2f}, phase {task["phase"][0]:.2f})')


if __name__ == '__main__':
    figures.run(main)
