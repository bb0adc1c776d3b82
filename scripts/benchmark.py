"""Seconds per training iteration and peak memory of the paper's configurations.

Random inputs of the right shapes stand in for data, so no dataset is needed.
One configuration per process, so the peak memory (max RSS) is that configuration's.

  python scripts/benchmark.py omniglot5way [--iterations 20] [--control_flow_v2]
  python scripts/benchmark.py all          # every configuration, one subprocess each
"""
import argparse
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402

# name: (model settings, meta batch, K, query examples per class, inner steps, clip)
OMNIGLOT = dict(dim_input=784, loss='xent', norm='batch_norm')
MINI = dict(dim_input=21168, dim_output=5, loss='xent', norm='batch_norm', update_lr=0.01, conv=True,
            img_size=84, channels=3, num_filters=32, max_pool=True, flatten_features=True)
CONFIGS = {
    'sinusoid': (dict(dim_input=1, dim_output=1, loss='mse', update_lr=0.01, norm='None'), 25, 10, 10, 1, None),
    'omniglot5way': (dict(OMNIGLOT, dim_output=5, update_lr=0.4, conv=True), 32, 1, 1, 1, None),
    'omniglot5way_fc': (dict(OMNIGLOT, dim_output=5, update_lr=0.4, dim_hidden=(256, 128, 64, 64)),
                        32, 1, 1, 1, None),
    'omniglot20way': (dict(OMNIGLOT, dim_output=20, update_lr=0.1, conv=True), 16, 1, 1, 5, None),
    'miniimagenet1shot': (MINI, 4, 1, 15, 5, 10.0),
    'miniimagenet5shot': (MINI, 4, 5, 15, 5, 10.0),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', choices=sorted(CONFIGS) + ['all'])
    parser.add_argument('--iterations', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--inter_op_threads', type=int, default=2)
    parser.add_argument('--intra_op_threads', type=int, default=1)
    parser.add_argument('--control_flow_v2', action='store_true',
                        help='use TF 2 control flow (the port uses v1; this measures why)')
    parser.add_argument('--stop_grad', action='store_true', help='first-order MAML')
    return parser.parse_args()


def random_batch(settings, tasks, k, query):
    rng = np.random.default_rng(0)
    n, d = settings['dim_output'], settings['dim_input']
    def labels(count):
        if settings['loss'] == 'mse':
            return rng.normal(size=(tasks, count, 1))
        return np.tile(np.eye(n), (tasks, count // n, 1)) if n > 1 else np.ones((tasks, count, 1))
    na, nb = (k, query) if settings['loss'] == 'mse' else (n * k, n * query)
    return {'inputa': rng.random((tasks, na, d)), 'labela': labels(na),
            'inputb': rng.random((tasks, nb, d)), 'labelb': labels(nb)}


def benchmark(name, args):
    import tensorflow.compat.v1 as tf
    import maml
    if args.control_flow_v2:
        tf.enable_control_flow_v2()
    settings, tasks, k, query, steps, clip = CONFIGS[name]
    cfg = maml.ModelConfig(update_batch_size=k, stop_grad=args.stop_grad, **settings)
    if cfg.conv and not settings.get('flatten_features'):
        cfg.img_size, cfg.channels = 28, 1
    weights, norm_params = maml.construct_weights(cfg)
    graph = maml.MetaGraph(cfg, steps, weights, norm_params)
    _, ops = maml.build_train_ops(graph, 0.001, clip)
    config = tf.ConfigProto(inter_op_parallelism_threads=args.inter_op_threads,
                            intra_op_parallelism_threads=args.intra_op_threads)
    with tf.Session(config=config) as sess:
        sess.run(tf.global_variables_initializer())
        feed = graph.feed(random_batch(settings, tasks, k, query))
        for _ in range(args.warmup):
            sess.run(ops['metatrain'], feed)
        start = time.time()
        for _ in range(args.iterations):
            sess.run(ops['metatrain'], feed)
        seconds = (time.time() - start) / args.iterations
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    flow = 'v2' if args.control_flow_v2 else 'v1'
    print(f'{name}: {seconds:.3f} s/iteration, peak memory {peak_mb:.0f} MB '
          f'(meta batch {tasks}, K {k}, {steps} steps, control flow {flow}, '
          f'threads {args.inter_op_threads}/{args.intra_op_threads}'
          f'{", first-order" if args.stop_grad else ""})', flush=True)


def main():
    args = parse_args()
    if args.config != 'all':
        benchmark(args.config, args)
        return
    for name in CONFIGS:
        rest = [a for a in sys.argv[1:] if a != 'all']
        subprocess.run([sys.executable, os.path.abspath(__file__), name, *rest], check=True)


if __name__ == '__main__':
    main()
