"""The model: inner update by hand, meta-gradients against finite differences."""
import os
import subprocess
import sys

import numpy as np
import pytest

import maml
from tests.helpers import ROOT, SHARED, random_batch
from tf_quiet import tf


def tiny_fc(**overrides):
    cfg = maml.ModelConfig(dim_input=2, dim_output=1, loss='mse', update_lr=0.3,
                           update_batch_size=3, dim_hidden=(3,), dtype=tf.float64)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def tiny_conv(**overrides):
    cfg = maml.ModelConfig(dim_input=16, dim_output=2, loss='xent', update_lr=0.5,
                           update_batch_size=2, norm='batch_norm', conv=True, img_size=4,
                           channels=1, num_filters=2, dtype=tf.float64)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


class Built:
    """A MetaGraph with its session, variables randomised (biases and betas too)."""

    def __init__(self, cfg, num_steps=1, seed=0):
        self.graph = maml.build_graph(cfg, num_steps, seed)
        self.loss = self.graph.meta_losses[num_steps]
        self.vars = tf.trainable_variables('model/')
        self.grads = tf.gradients(self.loss, self.vars)
        self.sess = tf.Session()
        self.sess.run(tf.global_variables_initializer())
        rng = np.random.default_rng(seed)
        for var in self.vars:
            var.load(rng.normal(scale=0.5, size=var.shape.as_list()), self.sess)

    def loss_at(self, values, feed):
        for var, value in zip(self.vars, values):
            var.load(value, self.sess)
        return self.sess.run(self.loss, feed)

    def finite_difference(self, feed, var_index, direction, eps=1e-5):
        base = self.sess.run(self.vars)
        plus = [v + (eps * direction if i == var_index else 0) for i, v in enumerate(base)]
        minus = [v - (eps * direction if i == var_index else 0) for i, v in enumerate(base)]
        value = (self.loss_at(plus, feed) - self.loss_at(minus, feed)) / (2 * eps)
        self.loss_at(base, feed)
        return value


def check_against_finite_differences(built, feed, rng):
    """Directional derivative of each variable: analytic vs central differences."""
    grads = built.sess.run(built.grads, feed)
    for i, var in enumerate(built.vars):
        direction = rng.normal(size=var.shape.as_list())
        analytic = float(np.sum(grads[i] * direction))
        numeric = built.finite_difference(feed, i, direction)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), var.op.name
    return grads


def test_inner_update_matches_hand_computation():
    cfg = tiny_fc(dim_hidden=(3,))
    built = Built(cfg)
    w1, b1, w2, b2 = built.sess.run(built.vars)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    # numpy: forward, MSE, backprop, one step
    h_pre = x @ w1 + b1
    h = np.maximum(h_pre, 0)
    pred = h @ w2 + b2
    dpred = 2 * (pred - y) / pred.size
    gw2, gb2 = h.T @ dpred, dpred.sum(0)
    dh = (dpred @ w2.T) * (h_pre > 0)
    gw1, gb1 = x.T @ dh, dh.sum(0)
    fast = [w - cfg.update_lr * g for w, g in zip((w1, b1, w2, b2), (gw1, gb1, gw2, gb2))]
    xb = rng.normal(size=(4, 2))
    expected = np.maximum(xb @ fast[0] + fast[1], 0) @ fast[2] + fast[3]
    feed = built.graph.feed({'inputa': x[None], 'labela': y[None], 'inputb': xb[None],
                             'labelb': np.zeros((1, 4, 1))})
    outputs = built.sess.run(built.graph.outputsb, feed)
    np.testing.assert_allclose(outputs[0, 1], expected, rtol=1e-10)
    np.testing.assert_allclose(outputs[0, 0], np.maximum(xb @ w1 + b1, 0) @ w2 + b2, rtol=1e-10)


@pytest.mark.parametrize('norm', ['None', 'batch_norm', 'layer_norm'])
def test_second_order_fc_meta_gradient_matches_finite_differences(norm):
    cfg = tiny_fc(norm=norm, dim_hidden=(4, 3))
    built = Built(cfg, num_steps=2)
    rng = np.random.default_rng(2)
    check_against_finite_differences(built, built.graph.feed(random_batch(cfg, rng)), rng)


@pytest.mark.parametrize('norm', ['batch_norm', 'layer_norm'])
def test_second_order_conv_meta_gradient_matches_finite_differences(norm):
    cfg = tiny_conv(norm=norm)
    built = Built(cfg)
    rng = np.random.default_rng(3)
    check_against_finite_differences(built, built.graph.feed(random_batch(cfg, rng)), rng)


def test_finite_difference_check_catches_tf_moments(monkeypatch):
    """With TF 2's own moments (stop_gradient inside the variance) the same check fails:
    the reason maml writes its moments by hand, and proof the check can fail."""
    monkeypatch.setattr(maml, '_moments',
                        lambda x, axes: tf.nn.moments(x, axes, keepdims=True))
    cfg = tiny_conv(norm='batch_norm')
    built = Built(cfg)
    rng = np.random.default_rng(3)
    with pytest.raises(AssertionError):
        check_against_finite_differences(built, built.graph.feed(random_batch(cfg, rng)), rng)


def test_first_order_gradient_differs_and_equals_gradient_at_fast_weights():
    cfg = tiny_fc(norm='None')
    rng = np.random.default_rng(4)
    batch = random_batch(cfg, rng, tasks=1)
    second = Built(cfg)
    feed = second.graph.feed(batch)
    g_second = second.sess.run(second.grads, feed)
    first = Built(tiny_fc(norm='None', stop_grad=True))
    g_first = first.sess.run(first.grads, first.graph.feed(batch))
    # the same weights in both graphs (same seed), so only the order differs
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(g_first, g_second))
    # first order: the gradient of L_b with respect to the adapted weights themselves
    weights = dict(zip(['w1', 'b1', 'w2', 'b2'], first.vars))
    inputa, labela = tf.constant(batch['inputa'][0]), tf.constant(batch['labela'][0])
    fast = list(maml.adapt(inputa, labela, weights, [{}], cfg, 1))[-1]
    loss_b = maml.task_loss(maml.forward(tf.constant(batch['inputb'][0]), fast, [{}], cfg),
                            tf.constant(batch['labelb'][0]), cfg)
    expected = first.sess.run(tf.gradients(loss_b, list(fast.values())))
    for got, want in zip(g_first, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10)


REFERENCE = os.path.join(SHARED, 'reference', 'model59000')


@pytest.mark.skipif(not os.path.exists(REFERENCE + '.index'), reason='../shared/reference absent')
def test_reference_checkpoint_restores_and_every_variable_is_used():
    cfg = maml.ModelConfig(dim_input=84 * 84 * 3, dim_output=5, loss='xent', update_lr=0.01,
                           update_batch_size=1, norm='batch_norm', conv=True, img_size=84,
                           channels=3, num_filters=32, max_pool=True, flatten_features=True)
    graph = maml.build_graph(cfg, 2)
    stored = {name for name, _ in tf.train.list_variables(REFERENCE)}
    ours = {v.op.name for v in maml.model_variables()}
    assert stored == ours
    with tf.Session() as sess:
        variables = maml.model_variables()
        assert maml.restore_variables(sess, REFERENCE, variables, require_all=True) == []
        reader = tf.train.load_checkpoint(REFERENCE)
        np.testing.assert_array_equal(sess.run(graph.weights['w5']), reader.get_tensor('model/w5'))
        rng = np.random.default_rng(0)
        batch = {'inputa': rng.random((1, 5, cfg.dim_input)),
                 'inputb': rng.random((1, 5, cfg.dim_input)),
                 'labela': np.eye(5)[None], 'labelb': np.eye(5)[None]}
        metrics = sess.run(graph.metricsb, graph.feed(batch))
    assert metrics.shape == (1, 3) and np.all(np.isfinite(metrics))


# ------------------------------------------------- the reference's choices, pinned
def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_fc_inner_steps(params, x, y, k, alpha, steps):
    """Hand-written MAML inner loop of a 1-hidden-layer ReLU net with the reference's
    loss: softmax cross-entropy per example divided by K, summed over examples."""
    w1, b1, w2, b2 = params
    trajectory = [params]
    for _ in range(steps):
        h_pre = x @ w1 + b1
        h = np.maximum(h_pre, 0)
        dlogits = (softmax(h @ w2 + b2) - y) / k
        dh = (dlogits @ w2.T) * (h_pre > 0)
        grads = (x.T @ dh, dh.sum(0), h.T @ dlogits, dlogits.sum(0))
        w1, b1, w2, b2 = [p - alpha * g for p, g in zip((w1, b1, w2, b2), grads)]
        trajectory.append((w1, b1, w2, b2))
    return trajectory


def numpy_xent_loss(params, x, y, k):
    w1, b1, w2, b2 = params
    p = softmax(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    return float(np.sum(-np.sum(y * np.log(p), -1) / k))


def test_several_inner_steps_with_k_above_1_match_numpy():
    """Pins the loss and its 1/K scaling, the same alpha at every step, and which
    step's query loss each meta_losses entry is."""
    k, steps = 3, 3
    cfg = tiny_fc(loss='xent', dim_output=2, update_batch_size=k, update_lr=0.7, dim_hidden=(4,))
    built = Built(cfg, num_steps=steps)
    rng = np.random.default_rng(5)
    labels = np.tile(np.eye(2), (k, 1))
    x, xb = rng.normal(size=(2 * k, 2)), rng.normal(size=(2 * k, 2))
    feed = built.graph.feed({'inputa': x[None], 'labela': labels[None],
                             'inputb': xb[None], 'labelb': labels[None]})
    got = built.sess.run(built.graph.meta_losses, feed)
    trajectory = numpy_fc_inner_steps(built.sess.run(built.vars), x, labels, k, 0.7, steps)
    expected = [numpy_xent_loss(p, xb, labels, k) for p in trajectory]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert built.sess.run(built.graph.pre_loss, feed) == pytest.approx(
        numpy_xent_loss(trajectory[0], x, labels, k), rel=1e-10)
    assert len(set(np.round(expected, 6))) == steps + 1     # the steps really differ


def test_norms_match_numpy_with_the_references_epsilons():
    rng = np.random.default_rng(6)
    x = rng.normal(scale=0.02, size=(5, 3, 3, 4))     # variance near epsilon: epsilon matters
    beta, gamma = rng.normal(size=4), rng.normal(size=4)
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    expected_bn = (x - mean) / np.sqrt(var + 1e-3) + beta
    lmean, lvar = x.mean((1, 2, 3), keepdims=True), x.var((1, 2, 3), keepdims=True)
    expected_ln = (x - lmean) / np.sqrt(lvar + 1e-12) * gamma + beta
    with tf.Session() as sess:
        bn, ln = sess.run([maml.batch_norm(tf.constant(x), tf.constant(beta)),
                           maml.layer_norm(tf.constant(x), tf.constant(beta), tf.constant(gamma))])
    np.testing.assert_allclose(bn, expected_bn, rtol=1e-10)
    np.testing.assert_allclose(ln, expected_ln, rtol=1e-8)


def initial_values(cfg):
    graph = maml.build_graph(cfg, 1, seed=3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(graph.weights), sess.run(graph.norm_params)


def test_initialisers_are_the_references():
    omniglot = maml.ModelConfig(dim_input=784, dim_output=5, loss='xent', update_lr=0.4,
                                update_batch_size=1, norm='batch_norm', conv=True)
    weights, norms = initial_values(omniglot)
    bound = np.sqrt(6 / (9 * 1 + 9 * 64))                # Glorot uniform, conv1
    assert np.abs(weights['conv1']).max() <= bound and np.abs(weights['conv1']).max() > 0.95 * bound
    assert weights['w5'].std() == pytest.approx(1.0, abs=0.15)        # random_normal(0, 1)
    assert all(not weights[f'b{i}'].any() for i in range(1, 6))
    assert all(not n['beta'].any() for n in norms)
    mini = maml.ModelConfig(dim_input=84 * 84 * 3, dim_output=5, loss='xent', update_lr=0.01,
                            update_batch_size=1, norm='batch_norm', conv=True, img_size=84,
                            channels=3, num_filters=32, max_pool=True, flatten_features=True)
    weights, _ = initial_values(mini)
    bound = np.sqrt(6 / (800 + 5))                       # Glorot uniform, flattened 5x5x32
    assert weights['w5'].shape == (800, 5) and np.abs(weights['w5']).max() <= bound
    fc = maml.ModelConfig(dim_input=1, dim_output=1, loss='mse', update_lr=0.01,
                          update_batch_size=10, norm='layer_norm')
    weights, norms = initial_values(fc)
    assert np.abs(weights['w2']).max() <= 0.02                     # truncated at 2 std
    assert weights['w2'].std() == pytest.approx(0.0088, rel=0.2)   # std 0.01, truncated
    assert all((n['gamma'] == 1).all() and not n['beta'].any() for n in norms)


def test_norm_parameters_are_meta_learned_not_adapted():
    cfg = tiny_fc(norm='layer_norm')
    built = Built(cfg)
    fast = next(maml.adapt(tf.constant(np.ones((3, 2))), tf.constant(np.ones((3, 1))),
                           built.graph.weights, built.graph.norm_params, cfg, 1))
    assert sorted(fast) == ['b1', 'b2', 'w1', 'w2']
    names = {v.op.name for v in built.vars}
    assert {'model/0/beta', 'model/0/gamma'} <= names          # trained by the meta-update


@pytest.mark.slow
def test_onednn_kernels_give_the_same_second_order_meta_gradient(tmp_path):
    """main.py turns TensorFlow's oneDNN CPU kernels on; the float32 meta-gradient
    through conv, max-pool and batch norm must not change beyond round-off (a kernel
    without an exact second derivative would move it by far more)."""
    grads = {}
    for setting in ('0', '1'):
        out = tmp_path / f'onednn{setting}.npz'
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, TF_CPP_MIN_LOG_LEVEL='3')
        subprocess.run([sys.executable, '-m', 'tests.meta_gradient_probe', str(out)], cwd=ROOT,
                       env=env, check=True, capture_output=True, timeout=300)
        grads[setting] = dict(np.load(out))
    scale = max(np.abs(g).max() for g in grads['0'].values())
    assert scale > 0
    for name, plain in grads['0'].items():
        np.testing.assert_allclose(grads['1'][name], plain, rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize('make', [tiny_fc, tiny_conv])
def test_step_by_step_adaptation_equals_the_unrolled_inner_loop(make):
    """StepGraph (adapt.py's any number of steps, one at a time) gives the query set output
    the unrolled graph gives after the same steps, batch norm included."""
    cfg = make()
    built = Built(cfg, num_steps=4)
    values = built.sess.run(built.vars)
    rng = np.random.default_rng(2)
    batch = random_batch(cfg, rng, tasks=1, examples=4)
    unrolled = built.sess.run(built.graph.outputsb, built.graph.feed(batch))[0, -1]
    step = maml.build_step_graph(cfg)
    with tf.Session() as sess:
        for var, value in zip(tf.trainable_variables('model/'), values):
            var.load(value, sess)
        stepped = step.run(sess, batch['inputa'][0], batch['labela'][0], batch['inputb'][0], 4)
        np.testing.assert_allclose(stepped, unrolled, rtol=1e-9)
        one = step.run(sess, batch['inputa'][0], batch['labela'][0], batch['inputb'][0], 1)
        assert not np.allclose(one, unrolled)       # the number of steps is honoured
