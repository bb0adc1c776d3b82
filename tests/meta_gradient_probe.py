"""Writes the float32 meta-gradient of a small miniImagenet-shaped net (conv, max-pool,
batch norm, two inner steps) to an .npz file; run in a subprocess, so a test can
compare TensorFlow's kernels chosen by environment variables read at import.

  python -m tests.meta_gradient_probe OUT.npz
"""
import sys

import numpy as np

import maml
from tests.helpers import random_batch
from tf_quiet import tf


def meta_gradient():
    cfg = maml.ModelConfig(dim_input=24 * 24 * 3, dim_output=5, loss='xent', update_lr=0.01,
                           update_batch_size=1, norm='batch_norm', conv=True, img_size=24,
                           channels=3, num_filters=8, max_pool=True, flatten_features=True)
    graph = maml.build_graph(cfg, num_steps=2, seed=0)
    variables = maml.model_variables()
    grads = tf.gradients(graph.meta_losses[2], variables)
    batch = random_batch(cfg, np.random.default_rng(0), tasks=2, examples=5)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(grads, graph.feed(batch))
    return {var.op.name.replace('/', '.'): value for var, value in zip(variables, values)}


if __name__ == '__main__':
    np.savez(sys.argv[1], **meta_gradient())
