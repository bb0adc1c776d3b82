"""Curvature of a sinusoid model's inner loss on the evaluation tasks.

For each of the 600 test tasks (the ones main.py evaluates), the largest eigenvalue of
the Hessian of the K-point a-set loss at the meta-learned weights, by power iteration
on Hessian-vector products. Gradient descent with step alpha is stable on a quadratic
only while that eigenvalue stays below 2 / alpha. Used to study the tasks on which
repeated inner steps diverge (README, Results).

  python -m scripts.sinusoid_curvature logs/sine_maml [--k 5] [--update_lr 0.01]
"""
import argparse
import glob
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import data_generator  # noqa: E402
import maml  # noqa: E402
import utils  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('logdir', help='a sinusoid run, e.g. logs/sine_maml')
    parser.add_argument('--k', type=int, default=5, help='points per task')
    parser.add_argument('--update_lr', type=float, default=0.01, help='alpha')
    parser.add_argument('--tasks', type=int, default=600)
    parser.add_argument('--power_iterations', type=int, default=60)
    return parser.parse_args()


class Curvature:
    """Hessian-vector products of the a-set MSE at the restored weights."""

    def __init__(self, checkpoint, update_lr, k):
        cfg = maml.ModelConfig(dim_input=1, dim_output=1, loss='mse', update_lr=update_lr,
                               update_batch_size=k)
        graph = maml.build_graph(cfg, num_steps=1)
        weights, norm_params = graph.weights, graph.norm_params
        self.x = tf.placeholder(tf.float32, [None, 1])
        self.y = tf.placeholder(tf.float32, [None, 1])
        loss = maml.mse(maml.forward(self.x, weights, norm_params, cfg), self.y)
        params = list(weights.values())
        self.vector = [tf.placeholder(tf.float32, w.shape) for w in params]
        grads = tf.gradients(loss, params)
        self.hvp = tf.gradients(tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, self.vector)]),
                                params)
        self.shapes = [w.shape.as_list() for w in params]
        self.sess = tf.Session()
        maml.restore_variables(self.sess, checkpoint, maml.model_variables(), require_all=True)

    def top_eigenvalue(self, x, y, iterations, rng):
        v = [rng.normal(size=shape) for shape in self.shapes]
        value = 0.0
        for _ in range(iterations):
            norm = np.sqrt(sum(np.sum(a ** 2) for a in v))
            v = [a / norm for a in v]
            hv = self.sess.run(self.hvp, {self.x: x, self.y: y, **dict(zip(self.vector, v))})
            value = sum(np.sum(a * b) for a, b in zip(hv, v))
            v = hv
        return value


def main():
    args = parse_args()
    folder = [d for d in glob.glob(os.path.join(args.logdir, '*')) if os.path.isdir(d)]
    checkpoint = tf.train.latest_checkpoint(folder[0]) if folder else None
    if checkpoint is None:
        sys.exit(f'error: no checkpoint under {args.logdir}')
    curvature = Curvature(checkpoint, args.update_lr, args.k)
    tasks, rng = data_generator.SinusoidTasks(), np.random.default_rng(0)
    eigenvalues, amplitudes = [], []
    for i in range(args.tasks):
        batch = tasks.sample(data_generator.batch_rng(data_generator.EVAL_SEED, i), 1, 'test', args.k, args.k)
        eigenvalues.append(curvature.top_eigenvalue(batch['inputa'][0], batch['labela'][0],
                                                    args.power_iterations, rng))
        amplitudes.append(batch['amp'][0])
    eigenvalues = np.array(eigenvalues)
    limit = 2 / args.update_lr
    print(f'{checkpoint}, K={args.k}: top Hessian eigenvalue over {args.tasks} tasks: '
          f'median {np.median(eigenvalues):.0f}, 90% {np.percentile(eigenvalues, 90):.0f}, '
          f'max {eigenvalues.max():.0f}; above 2/alpha = {limit:.0f} on {np.sum(eigenvalues > limit)}')
    csv_path = os.path.join(os.path.dirname(checkpoint), utils.eval_basename(args.k, args.update_lr) + '.csv')
    if os.path.isfile(csv_path):
        last = utils.read_eval_pickle(csv_path)['mses'][:args.tasks, -1]
        diverged = ~np.isfinite(last) | (last > 10)
        for i in np.flatnonzero(diverged):
            print(f'  task {i}: eigenvalue {eigenvalues[i]:.0f}, amplitude {amplitudes[i]:.2f}, '
                  f'MSE after the last step {last[i]:.4g}')


if __name__ == '__main__':
    main()
