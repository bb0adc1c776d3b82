"""Writes the float32 meta-gradient of a small miniImagenet-shaped net (conv, max-pool,
batch norm, two inner steps) to an .npz file; run in a subprocess, so a test can
compare TensorFlow's kernels chosen by environment variables read at import.

  python -m tests.meta_gradient_probe OUT.npz
"""
import sys

import numpy as np
import tensorflow.compat.v1 as tf

import maml


def meta_gradient():
    cfg = maml.ModelConfig(dim_input=24 * 24 * 3, dim_output=5, loss='xent', update_lr=0.01,
                           update_batch_size=1, norm='batch_norm', conv=True, img_size=24,
                           channels=3, num_filters=8, max_pool=True, flatten_features=True)
    graph = maml.build_graph(cfg, num_steps=2, seed=0)
    variables = maml.model_variables()
    grads = tf.gradients(graph.meta_losses[2], variables)
    rng = np.random.default_rng(0)
    labels = np.eye(5, dtype=np.float32)
    batch = {'inputa': rng.random((2, 5, cfg.dim_input), np.float32),
             'inputb': rng.random((2, 15, cfg.dim_input), np.float32),
             'labela': np.tile(labels, (2, 1, 1)), 'labelb': np.tile(labels, (2, 3, 1))}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(grads, graph.feed(batch))
    return {var.op.name.replace('/', '.'): value for var, value in zip(variables, values)}


if __name__ == '__main__':
    np.savez(sys.argv[1], **meta_gradient())
