"""The MAML model: networks, normalisation, losses, inner-loop adaptation and the
meta-objective, and loading weights from a checkpoint.

Graph mode through tf.compat.v1 with v1 control flow, which on this code runs
several times faster and in less memory than TF 2's control flow.

The normalisation is written out by hand instead of calling `tf.nn.moments` or
`tf.nn.fused_batch_norm`: TF 2 stops the gradient through the mean inside the
variance, which leaves first derivatives right but the second derivatives MAML
needs wrong. The statistics here are plain functions of the batch, as they were
in the TensorFlow of 2017.

Usage, on its own (the settings are plain values; main.py builds them from the flags):

    import maml
    from tf_quiet import tf
    cfg = maml.ModelConfig(dim_input=1, dim_output=1, loss='mse', update_lr=0.01,
                           update_batch_size=10)          # the sinusoid's FC net
    graph = maml.build_graph(cfg, num_steps=1, seed=0)   # placeholders, inner loop, losses
    step, ops = maml.build_train_ops(graph, meta_lr=0.001)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # batch: inputa, labela (the support set) and inputb, labelb (the query set),
        # each [tasks, examples, dim]
        sess.run(ops['metatrain'], graph.feed(batch))     # one meta-update
        after = sess.run(graph.outputsb, graph.feed(batch))[:, 1]   # adapted predictions
"""
import dataclasses

from tf_quiet import tf
from utils import UserError


@dataclasses.dataclass
class ModelConfig:
    """Everything that shapes the graph, built by the caller (main.py builds it from the
    flags: RunConfig.model_settings)."""
    dim_input: int
    dim_output: int
    loss: str                  # 'mse' (regression) or 'xent' (classification)
    update_lr: float           # alpha
    update_batch_size: int     # K; the cross-entropy is divided by it
    norm: str = 'None'
    conv: bool = False
    dim_hidden: tuple = (40, 40)   # FC net hidden layers
    img_size: int = 28
    channels: int = 1
    num_filters: int = 64
    max_pool: bool = False
    flatten_features: bool = False  # miniImagenet: flatten; Omniglot: spatial mean
    stop_grad: bool = False
    dtype: object = tf.float32


def build_graph(cfg, num_steps, seed=0):
    """A new default graph holding the model's variables and its MetaGraph."""
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    weights, norm_params = construct_weights(cfg)
    return MetaGraph(cfg, num_steps, weights, norm_params)


# ---------------------------------------------------------------------- weights
def construct_weights(cfg):
    """Create the network's variables under scope 'model', named as the reference.

    Returns (weights, norm_params): `weights` is an ordered dict of the tensors the
    inner loop adapts; `norm_params` (one dict per hidden layer) are meta-learned only.
    """
    with tf.variable_scope('model', reuse=tf.AUTO_REUSE):
        weights = _conv_weights(cfg) if cfg.conv else _fc_weights(cfg)
        layer_widths = [cfg.num_filters] * 4 if cfg.conv else list(cfg.dim_hidden)
        norm_params = [_norm_params(i, width, cfg) for i, width in enumerate(layer_widths)]
    return weights, norm_params


def _zeros(shape, cfg, name=None):
    return tf.Variable(tf.zeros(shape, dtype=cfg.dtype), name=name)


def _fc_weights(cfg):
    weights = {}
    sizes = [cfg.dim_input] + list(cfg.dim_hidden) + [cfg.dim_output]
    for i in range(len(sizes) - 1):
        init = tf.truncated_normal([sizes[i], sizes[i + 1]], stddev=0.01, dtype=cfg.dtype)
        weights[f'w{i + 1}'] = tf.Variable(init)
        weights[f'b{i + 1}'] = _zeros([sizes[i + 1]], cfg)
    return weights


def _conv_weights(cfg):
    weights = {}
    glorot = tf.glorot_uniform_initializer(dtype=cfg.dtype)
    channels = cfg.channels
    for i in range(1, 5):
        weights[f'conv{i}'] = tf.get_variable(f'conv{i}', [3, 3, channels, cfg.num_filters],
                                              initializer=glorot, dtype=cfg.dtype)
        weights[f'b{i}'] = _zeros([cfg.num_filters], cfg)
        channels = cfg.num_filters
    if cfg.flatten_features:
        side = conv_output_side(cfg)
        weights['w5'] = tf.get_variable('w5', [side * side * cfg.num_filters, cfg.dim_output],
                                        initializer=glorot, dtype=cfg.dtype)
    else:
        weights['w5'] = tf.Variable(
            tf.random_normal([cfg.num_filters, cfg.dim_output], dtype=cfg.dtype), name='w5')
    weights['b5'] = _zeros([cfg.dim_output], cfg, name='b5')
    return weights


def _norm_params(index, width, cfg):
    if cfg.norm == 'None':
        return {}
    with tf.variable_scope(str(index)):
        params = {'beta': tf.get_variable('beta', [width], dtype=cfg.dtype,
                                          initializer=tf.zeros_initializer())}
        if cfg.norm == 'layer_norm':
            params['gamma'] = tf.get_variable('gamma', [width], dtype=cfg.dtype,
                                              initializer=tf.ones_initializer())
    return params


def conv_output_side(cfg):
    """Spatial side after four blocks: SAME stride 2 rounds up, VALID 2x2 pooling down."""
    side = cfg.img_size
    for _ in range(4):
        side = side // 2 if cfg.max_pool else -(-side // 2)
    return side


# ---------------------------------------------------------------- normalisation
BATCH_NORM_EPSILON = 1e-3   # tf.contrib.layers.batch_norm default
LAYER_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm default


def _moments(x, axes):
    """Mean and (biased) variance whose second derivatives are exact."""
    mean = tf.reduce_mean(x, axes, keepdims=True)
    variance = tf.reduce_mean(tf.square(x - mean), axes, keepdims=True)
    return mean, variance


def batch_norm(x, beta):
    """Transductive batch norm: statistics of this batch, offset only, no scale."""
    mean, variance = _moments(x, list(range(len(x.shape) - 1)))
    return (x - mean) * tf.rsqrt(variance + BATCH_NORM_EPSILON) + beta


def layer_norm(x, beta, gamma):
    """Per-example normalisation over all non-batch dimensions, offset and scale."""
    mean, variance = _moments(x, list(range(1, len(x.shape))))
    return (x - mean) * tf.rsqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def normalize(x, norm, params, activation=tf.nn.relu):
    """Apply `norm` ('batch_norm', 'layer_norm' or 'None') then the activation."""
    if norm == 'batch_norm':
        x = batch_norm(x, params['beta'])
    elif norm == 'layer_norm':
        x = layer_norm(x, params['beta'], params['gamma'])
    elif norm != 'None':
        raise UserError(f"unknown --norm={norm!r}; use batch_norm, layer_norm or None")
    return activation(x) if activation is not None else x


# ----------------------------------------------------------------------- losses
def mse(pred, label):
    return tf.reduce_mean(tf.square(pred - label))


def xent(pred, label, update_batch_size):
    """Per-example softmax cross-entropy divided by K (a vector, as the reference)."""
    return tf.nn.softmax_cross_entropy_with_logits(logits=pred, labels=label) / update_batch_size


def accuracy(pred, label):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(label, -1)), pred.dtype))


# ---------------------------------------------------------------------- forward
def forward(inp, weights, norm_params, cfg):
    return (_forward_conv if cfg.conv else _forward_fc)(inp, weights, norm_params, cfg)


def _forward_fc(inp, weights, norm_params, cfg):
    hidden = inp
    for i, params in enumerate(norm_params):
        hidden = tf.matmul(hidden, weights[f'w{i + 1}']) + weights[f'b{i + 1}']
        hidden = normalize(hidden, cfg.norm, params)
    last = len(norm_params) + 1
    return tf.matmul(hidden, weights[f'w{last}']) + weights[f'b{last}']


def _forward_conv(inp, weights, norm_params, cfg):
    hidden = tf.reshape(inp, [-1, cfg.img_size, cfg.img_size, cfg.channels])
    stride = [1, 2, 2, 1]
    for i, params in enumerate(norm_params):
        conv_stride = [1, 1, 1, 1] if cfg.max_pool else stride
        hidden = tf.nn.conv2d(hidden, weights[f'conv{i + 1}'], conv_stride, 'SAME')
        hidden += weights[f'b{i + 1}']
        hidden = normalize(hidden, cfg.norm, params)
        if cfg.max_pool:
            hidden = tf.nn.max_pool(hidden, stride, stride, 'VALID')
    if cfg.flatten_features:
        hidden = tf.reshape(hidden, [-1, int(hidden.shape[1] * hidden.shape[2] * hidden.shape[3])])
    else:
        hidden = tf.reduce_mean(hidden, [1, 2])
    return tf.matmul(hidden, weights['w5']) + weights['b5']


# ------------------------------------------------------------------- inner loop
def task_loss(pred, label, cfg):
    """A task's scalar loss: mean MSE, or the sum of the per-example xent / K."""
    if cfg.loss == 'mse':
        return mse(pred, label)
    return tf.reduce_sum(xent(pred, label, cfg.update_batch_size))


def task_metric(pred, label, cfg):
    """What evaluation reports: MSE for regression, accuracy for classification."""
    return mse(pred, label) if cfg.loss == 'mse' else accuracy(pred, label)


def adapt(inputa, labela, weights, norm_params, cfg, num_steps, first_outputa=None):
    """Yield the fast weights after 1..num_steps gradient steps on the support set.

    first_outputa: the network's support set output at `weights`, when the caller has it,
    so the first step does not build that forward pass a second time.
    """
    fast = dict(weights)
    for step in range(num_steps):
        outputa = first_outputa if step == 0 and first_outputa is not None else forward(
            inputa, fast, norm_params, cfg)
        grads = tf.gradients(task_loss(outputa, labela, cfg), list(fast.values()))
        if cfg.stop_grad:
            grads = [tf.stop_gradient(g) for g in grads]
        fast = {name: w - cfg.update_lr * g for (name, w), g in zip(fast.items(), grads)}
        yield fast


def task_metalearn(task, weights, norm_params, cfg, num_steps):
    """One task: the support set loss and metric before adaptation, and on the query set
    the loss, metric and output before and after each step.

    Returns (lossa, metrica, lossesb, metricsb, outputsb); the last three are lists
    of num_steps + 1 tensors, entry 0 before adaptation. They stay separate tensors
    (not stacked) so a fetch of step j's loss runs only the forward passes step j
    needs: the meta-gradient uses the query set after the last step alone.
    """
    inputa, inputb, labela, labelb = task
    outputa = forward(inputa, weights, norm_params, cfg)
    outputsb = [forward(inputb, weights, norm_params, cfg)]
    for fast in adapt(inputa, labela, weights, norm_params, cfg, num_steps, outputa):
        outputsb.append(forward(inputb, fast, norm_params, cfg))
    lossesb = [task_loss(out, labelb, cfg) for out in outputsb]
    metricsb = [task_metric(out, labelb, cfg) for out in outputsb]
    return (task_loss(outputa, labela, cfg), task_metric(outputa, labela, cfg),
            lossesb, metricsb, outputsb)


# ---------------------------------------------------------------- meta-objective
class MetaGraph:
    """Placeholders, per-task results over a meta-batch, and the meta-losses.

    inputa/inputb: [tasks, examples, dim_input]; labels likewise with dim_output.
    meta_losses[j], mean_metrics[j]: means over tasks on the query set after j steps
    (meta_losses[j] is the reference's total_losses2[j - 1]); lossesb, metricsb,
    outputsb: the per-task values stacked as [tasks, num_steps + 1, ...].
    pre_loss, pre_metric: means over tasks on the support set before adaptation (the
    reference's total_loss1 and total_accuracy1).
    """

    def __init__(self, cfg, num_steps, weights, norm_params):
        self.cfg, self.num_steps = cfg, num_steps
        self.weights, self.norm_params = weights, norm_params
        self.inputa = tf.placeholder(cfg.dtype, [None, None, cfg.dim_input], 'inputa')
        self.inputb = tf.placeholder(cfg.dtype, [None, None, cfg.dim_input], 'inputb')
        self.labela = tf.placeholder(cfg.dtype, [None, None, cfg.dim_output], 'labela')
        self.labelb = tf.placeholder(cfg.dtype, [None, None, cfg.dim_output], 'labelb')
        elems = (self.inputa, self.inputb, self.labela, self.labelb)
        per_step = [cfg.dtype] * (num_steps + 1)
        lossa, metrica, lossesb, metricsb, outputsb = tf.map_fn(
            lambda task: task_metalearn(task, weights, norm_params, cfg, num_steps), elems,
            fn_output_signature=(cfg.dtype, cfg.dtype, per_step, per_step, per_step),
            parallel_iterations=64)
        self.pre_loss, self.pre_metric = tf.reduce_mean(lossa), tf.reduce_mean(metrica)
        self.meta_losses = [tf.reduce_mean(loss) for loss in lossesb]
        self.mean_metrics = [tf.reduce_mean(metric) for metric in metricsb]
        self.lossesb = tf.stack(lossesb, axis=1)
        self.metricsb = tf.stack(metricsb, axis=1)
        self.outputsb = tf.stack(outputsb, axis=1)

    def feed(self, batch):
        return {self.inputa: batch['inputa'], self.inputb: batch['inputb'],
                self.labela: batch['labela'], self.labelb: batch['labelb']}


class StepGraph:
    """One inner step with the weights fed in, for adapting to one task at test time:
    run it as many times as there are steps, feeding each step's weights to the next.
    Nothing is unrolled, so any number of steps builds in the same second; it needs
    no second derivatives, which only the meta-gradient takes.

    weights: {name: placeholder} fed; stepped: {name: tensor} after one step on the
    support set; outputb: the network's output on the query set at the fed weights.
    """

    def __init__(self, cfg, weights, norm_params):
        self.cfg, self.variables = cfg, weights
        self.inputa = tf.placeholder(cfg.dtype, [None, cfg.dim_input], 'inputa')
        self.labela = tf.placeholder(cfg.dtype, [None, cfg.dim_output], 'labela')
        self.inputb = tf.placeholder(cfg.dtype, [None, cfg.dim_input], 'inputb')
        self.weights = {name: tf.placeholder(cfg.dtype, w.shape, name)
                        for name, w in weights.items()}
        self.stepped = next(adapt(self.inputa, self.labela, self.weights, norm_params, cfg, 1))
        self.outputb = forward(self.inputb, self.weights, norm_params, cfg)

    def run(self, sess, inputa, labela, inputb, num_steps, progress=None):
        """The query set output after num_steps steps on (inputa, labela), starting from the
        variables' values; progress(step) is called after each step."""
        values = sess.run(self.variables)
        for step in range(1, num_steps + 1):
            feed = {self.inputa: inputa, self.labela: labela}
            feed.update({self.weights[k]: v for k, v in values.items()})
            values = sess.run(self.stepped, feed)
            if progress:
                progress(step)
        feed = {self.inputb: inputb}
        feed.update({self.weights[k]: v for k, v in values.items()})
        return sess.run(self.outputb, feed)


def build_step_graph(cfg, seed=0):
    """A new default graph holding the model's variables and a StepGraph."""
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    weights, norm_params = construct_weights(cfg)
    return StepGraph(cfg, weights, norm_params)


MIN_MAX_POOL_SIDE = 16     # four 2x2 max-pools (VALID) leave nothing of a smaller image


def check_image_side(side, max_pool):
    """Refuse images the conv net cannot take: under 16x16 with --max_pool=True."""
    if max_pool and side < MIN_MAX_POOL_SIDE:
        raise UserError(f'images of {side}x{side} are too small for --max_pool=True, whose four '
                        f'2x2 pools need at least {MIN_MAX_POOL_SIDE}x{MIN_MAX_POOL_SIDE}: prepare '
                        f'them with --image_size {MIN_MAX_POOL_SIDE} or more, or train with '
                        f'--max_pool=False')


def model_variables():
    return tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, scope='model/')


def build_train_ops(graph, meta_lr, clip_value=None, pretrain=False, metatrain=True):
    """Adam ops on the pre-update loss (pretraining) and the meta-loss after num_steps.

    Both step the global step, so it always counts finished iterations.
    """
    global_step = tf.train.get_or_create_global_step()
    ops = {}
    if pretrain:
        ops['pretrain'] = tf.train.AdamOptimizer(meta_lr).minimize(
            graph.pre_loss, global_step=global_step)
    if metatrain:
        optimizer = tf.train.AdamOptimizer(meta_lr)
        grads_and_vars = optimizer.compute_gradients(graph.meta_losses[graph.num_steps],
                                                     var_list=tf.trainable_variables('model/'))
        if clip_value is not None:
            grads_and_vars = [(tf.clip_by_value(g, -clip_value, clip_value), v)
                              for g, v in grads_and_vars]
        ops['metatrain'] = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
    return global_step, ops


def shape_cause(name, theirs, ours):
    """What most likely makes a weight's shape differ: the data's channels or size, the
    number of classes, or the network's flags."""
    if name == 'model/conv1' and theirs[:2] == ours[:2] and theirs[3] == ours[3]:
        return (f'the checkpoint takes images of {theirs[2]} channel(s) and these have '
                f'{ours[2]} (grayscale 1, colour 3): give it data of its kind')
    if len(theirs) == 2 and len(ours) == 2 and theirs[0] == ours[0]:
        return f'it was trained {theirs[1]}-way: give --num_classes={theirs[1]}'
    if name.endswith(('w5', 'w1')) and len(theirs) == 2 and theirs[1] == ours[1]:
        return (f'its first dense layer takes {theirs[0]} inputs and here {ours[0]}: the images '
                f'are another size (or channels) than it was trained on, or --max_pool, '
                f'--num_filters or --conv differ')
    return 'check --num_filters, --max_pool and --conv against its training'


def listed(names, most=4):
    return ', '.join(names[:most]) + ('...' if len(names) > most else '')


def restore_variables(sess, checkpoint, variables, require_all=False):
    """Restore `variables` from `checkpoint` by name, checking shapes first.

    Returns the names absent from the checkpoint (they keep their initial values).
    With require_all the checkpoint's model must be exactly this one: any absence, or
    a model weight of the checkpoint that this model lacks, is an error.
    """
    stored = dict(tf.train.list_variables(checkpoint))
    by_name = {v.op.name: v for v in variables}
    missing = sorted(n for n in by_name if n not in stored)
    unused = sorted(n for n in stored if n.startswith('model/') and n not in by_name
                    and not n.endswith(('/Adam', '/Adam_1')))
    if require_all and (missing or unused):
        what = (f'lacks {listed(missing)}' if missing
                else f'holds {listed(unused)}, which this model lacks')
        raise UserError(f'checkpoint {checkpoint} does not fit this model: it {what} '
                        f'(check --datasource, --num_filters, --max_pool, --norm, --conv)')
    present = {n: v for n, v in by_name.items() if n in stored}
    for name, var in present.items():
        if list(stored[name]) != var.shape.as_list():
            raise UserError(f'checkpoint {checkpoint} does not fit this model: {name} has shape '
                            f'{stored[name]} there and {var.shape.as_list()} here: '
                            f'{shape_cause(name, list(stored[name]), var.shape.as_list())}')
    if present:
        tf.train.Saver(present).restore(sess, checkpoint)
    return missing
