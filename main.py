r"""Train and evaluate MAML (Finn, Abbeel & Levine, ICML 2017).

Usage:
  Sinusoid (paper settings):
    python main.py --datasource=sinusoid --logdir=logs/sine --metatrain_iterations=70000 \
        --norm=None --update_batch_size=10 --update_lr=0.01
  Omniglot 5-way 1-shot:
    python main.py --datasource=omniglot --metatrain_iterations=60000 --meta_batch_size=32 \
        --update_batch_size=1 --update_lr=0.4 --num_updates=1 --logdir=logs/omniglot5way
  Evaluate: the same command plus --train=False [--test_set=True] [--update_batch_size=K
    --train_update_batch_size=K_TRAIN].
"""
import os
import signal
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

import data_generator  # noqa: E402
import maml  # noqa: E402
import utils  # noqa: E402
from utils import UserError  # noqa: E402

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))

# Dataset and method options (names and defaults as the reference).
flags.DEFINE_enum('datasource', 'sinusoid', ['sinusoid', 'omniglot', 'miniimagenet'], 'Task family.')
flags.DEFINE_integer('num_classes', 5, 'N in N-way classification (ignored by the sinusoid data).')
flags.DEFINE_enum('baseline', None, ['oracle'],
                  'oracle: sinusoid input with amplitude and phase appended, trained by plain '
                  'regression. (The pretrained baseline is --pretrain_iterations=N '
                  '--metatrain_iterations=0.)')
# Training options.
flags.DEFINE_integer('pretrain_iterations', 0, 'Iterations of multi-task pretraining (pre-update loss).')
flags.DEFINE_integer('metatrain_iterations', 15000, 'Meta-training iterations.')
flags.DEFINE_integer('meta_batch_size', 25, 'Tasks per meta-update.')
flags.DEFINE_float('meta_lr', 0.001, 'Adam learning rate of the meta-update.')
flags.DEFINE_integer('update_batch_size', 5, 'K: examples per class for the inner update.')
flags.DEFINE_float('update_lr', 1e-3, 'alpha: step size of the inner gradient update.')
flags.DEFINE_integer('num_updates', 1, 'Inner gradient steps during training.')
# Model options.
flags.DEFINE_enum('norm', 'batch_norm', ['batch_norm', 'layer_norm', 'None'], 'Normalisation.')
flags.DEFINE_integer('num_filters', 64, 'Conv filters (the paper uses 32 for miniImagenet).')
flags.DEFINE_bool('conv', True, 'Conv net for images (False: FC net 256-128-64-64).')
flags.DEFINE_bool('max_pool', False, '2x2 max-pool after stride-1 convs instead of stride-2 convs.')
flags.DEFINE_bool('stop_grad', False, 'First-order MAML: no second derivatives through the inner step.')
# Logging, saving and testing options.
flags.DEFINE_bool('log', True, 'Write TensorBoard summaries.')
flags.DEFINE_string('logdir', '/tmp/data', 'Where summaries and checkpoints go.')
flags.DEFINE_bool('resume', True, 'Resume training from the latest checkpoint of the experiment.')
flags.DEFINE_bool('train', True, 'Train (True) or evaluate (False).')
flags.DEFINE_integer('test_iter', -1, 'Checkpoint iteration to evaluate (-1: latest).')
flags.DEFINE_bool('test_set', False, 'Evaluate on the test split (False: validation split).')
flags.DEFINE_integer('train_update_batch_size', -1, 'K used in training, when evaluating with another K.')
flags.DEFINE_float('train_update_lr', -1, 'alpha used in training, when evaluating with another alpha.')
# Added by this port.
flags.DEFINE_integer('seed', 0, 'Seed for initialisation and task sampling (runs are repeatable).')
flags.DEFINE_integer('save_interval', 1000, 'Save the whole training state every this many iterations.')
flags.DEFINE_integer('print_interval', None,
                     'Print mean losses every this many iterations (default: 1000 for sinusoid, '
                     '100 for images); validation runs every 5 prints.')
flags.DEFINE_string('data_dir', os.path.join(HERE, 'data'),
                    'Folder holding omniglot_resized/ and miniImagenet/.')
flags.DEFINE_string('checkpoint', None,
                    'Evaluate this checkpoint (path prefix, e.g. logs/x/model60000) instead of '
                    'the experiment folder\'s.')
flags.DEFINE_integer('test_num_updates', 10, 'Inner steps at evaluation.')
flags.DEFINE_integer('num_test_tasks', 600, 'Tasks in an evaluation.')
flags.DEFINE_list('omniglot_split', ['1100', '100'],
                  'Omniglot characters for meta-train and validation; the rest is test.')
flags.DEFINE_integer('inter_op_threads', 2, 'TensorFlow inter-op threads (0: TensorFlow decides).')
flags.DEFINE_integer('intra_op_threads', 1, 'TensorFlow intra-op threads (0: TensorFlow decides).')

SUMMARY_INTERVAL = 100
VALIDATION_EVERY_PRINTS = 5


# ------------------------------------------------------------------ set-up
def validate_flags():
    if FLAGS.baseline == 'oracle' and FLAGS.datasource != 'sinusoid':
        raise UserError('--baseline=oracle exists for --datasource=sinusoid only')
    positive = ['meta_batch_size', 'update_batch_size', 'num_updates', 'num_classes',
                'save_interval', 'num_filters', 'test_num_updates', 'num_test_tasks']
    for name in positive:
        if FLAGS[name].value < 1:
            raise UserError(f'--{name} must be at least 1 (got {FLAGS[name].value})')
    if FLAGS.pretrain_iterations < 0 or FLAGS.metatrain_iterations < 0:
        raise UserError('iteration counts cannot be negative')
    if FLAGS.train and FLAGS.checkpoint:
        raise UserError('--checkpoint is for evaluation (--train=False)')


def train_setting(name):
    """train_update_batch_size / train_update_lr: -1 means the same as now."""
    value = FLAGS['train_' + name].value
    return FLAGS[name].value if value == -1 else value


def experiment_dir():
    name = utils.exp_string(FLAGS.num_classes, FLAGS.meta_batch_size,
                            train_setting('update_batch_size'), FLAGS.num_updates,
                            train_setting('update_lr'), FLAGS.num_filters, FLAGS.max_pool,
                            FLAGS.stop_grad, FLAGS.baseline, FLAGS.norm)
    return os.path.join(FLAGS.logdir, name)


def model_config(tasks):
    source = FLAGS.datasource
    cfg = maml.ModelConfig(dim_input=tasks.dim_input, dim_output=tasks.dim_output,
                           loss='mse' if source == 'sinusoid' else 'xent',
                           update_lr=FLAGS.update_lr, update_batch_size=FLAGS.update_batch_size,
                           norm=FLAGS.norm, stop_grad=FLAGS.stop_grad)
    if source != 'sinusoid':
        cfg.conv, cfg.dim_hidden = FLAGS.conv, (256, 128, 64, 64)
        cfg.img_size, cfg.channels = tasks.img_size, tasks.channels
        cfg.num_filters, cfg.max_pool = FLAGS.num_filters, FLAGS.max_pool
        cfg.flatten_features = source == 'miniimagenet'
    return cfg


def query_shots(training):
    """b-set examples per class: miniImagenet trains on 15, everything else on K."""
    if training and FLAGS.datasource == 'miniimagenet':
        return 15
    return FLAGS.update_batch_size


def load_tasks(splits):
    return data_generator.make_tasks(
        FLAGS.datasource, FLAGS.data_dir, splits, FLAGS.num_classes,
        oracle=FLAGS.baseline == 'oracle',
        omniglot_split=tuple(int(v) for v in FLAGS.omniglot_split))


def new_session():
    config = tf.ConfigProto(inter_op_parallelism_threads=FLAGS.inter_op_threads,
                            intra_op_parallelism_threads=FLAGS.intra_op_threads)
    return tf.Session(config=config)


def build_model(cfg, num_steps, seed):
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    weights, norm_params = maml.construct_weights(cfg)
    return maml.MetaGraph(cfg, num_steps, weights, norm_params)


# ---------------------------------------------------------------- training
class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so it can save and exit."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:   # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.requested = True
        print('\nStopping: saving the training state after this iteration...', flush=True)


class Trainer:
    def __init__(self, tasks, exp_dir):
        self.tasks, self.exp_dir = tasks, exp_dir
        self.total = FLAGS.pretrain_iterations + FLAGS.metatrain_iterations
        self.graph = build_model(model_config(tasks), FLAGS.num_updates, FLAGS.seed)
        oracle = FLAGS.baseline == 'oracle'
        clip = 10.0 if FLAGS.datasource == 'miniimagenet' else None
        self.global_step, self.ops = maml.build_train_ops(
            self.graph, FLAGS.meta_lr, clip, pretrain=FLAGS.pretrain_iterations > 0 or oracle,
            metatrain=FLAGS.metatrain_iterations > 0 and not oracle)
        # relative paths in the state file, so a committed or moved run still resumes
        self.saver = tf.train.Saver(tf.global_variables(), max_to_keep=3, save_relative_paths=True)
        self.sess = new_session()
        self.writer = tf.summary.FileWriter(exp_dir) if FLAGS.log else None
        self.print_interval = FLAGS.print_interval or (1000 if FLAGS.datasource == 'sinusoid' else 100)

    def op_for(self, itr):
        if itr < FLAGS.pretrain_iterations or 'metatrain' not in self.ops:
            return self.ops['pretrain']
        return self.ops['metatrain']

    def restore_or_init(self):
        self.sess.run(tf.global_variables_initializer())
        latest = tf.train.latest_checkpoint(self.exp_dir) if FLAGS.resume else None
        if latest is None:
            return 0
        missing = utils.restore_variables(self.sess, latest, tf.global_variables())
        if missing:
            print(f'Note: {len(missing)} variables not in {latest} start fresh: {missing[:3]}...')
        state = tf.train.get_checkpoint_state(self.exp_dir)
        self.saver.recover_last_checkpoints(state.all_model_checkpoint_paths)
        return int(self.sess.run(self.global_step))

    def batch(self, itr, split='train'):
        rng = data_generator.batch_rng(FLAGS.seed, itr, 0 if split == 'train' else 1)
        return self.tasks.sample(rng, FLAGS.meta_batch_size, split,
                                 FLAGS.update_batch_size, query_shots(training=True))

    def save(self, done):
        path = self.saver.save(self.sess, os.path.join(self.exp_dir, f'model{done}'),
                               write_meta_graph=False)
        if self.writer:
            self.writer.flush()
        return path

    def run(self):
        start = self.restore_or_init()
        if start >= self.total:
            print(f'Nothing to train: {self.exp_dir} already holds {start} of {self.total} '
                  f'iterations. Evaluate it with --train=False.')
            return
        print(f'Training {self.exp_dir}: iterations {start + 1}..{self.total}', flush=True)
        stop = StopRequest()
        meter = ProgressMeter(self.print_interval, self.total, start)
        for itr in range(start, self.total):
            done = itr + 1
            summarize = self.writer is not None and done % SUMMARY_INTERVAL == 0
            results = self.sess.run(self.fetches(itr, summarize), self.graph.feed(self.batch(itr)))
            self.log(done, results, meter)
            if done % FLAGS.save_interval == 0 or done == self.total or stop.requested:
                self.save(done)
            if stop.requested:
                print(f'Saved after iteration {done}; run the same command to resume.')
                sys.exit(130)
        print(f'Finished: {self.total} iterations, checkpoint {self.exp_dir}/model{self.total}')

    def fetches(self, itr, summarize):
        """The train op and the progress figures, which cost no extra forward pass.

        On summary iterations also every step's b-set loss and metric, as the
        reference's summaries held; those need the b-set forward passes of the
        earlier steps, which the meta-gradient does not, so only then are they run.
        """
        graph, step = self.graph, FLAGS.num_updates
        fetches = {'op': self.op_for(itr), 'pre_loss': graph.pre_loss,
                   'post_loss': graph.meta_losses[step], 'pre_metric': graph.pre_metric,
                   'post_metric': graph.mean_metrics[step]}
        if summarize:
            fetches.update(losses=graph.meta_losses, metrics=graph.mean_metrics)
        return fetches

    def log(self, done, results, meter):
        classification = FLAGS.datasource != 'sinusoid'
        names = ['pre_loss', 'post_loss'] + (['pre_metric', 'post_metric'] if classification else [])
        line = meter.update(done, [results[n] for n in names])
        if 'losses' in results:
            write_summary(self.writer, summary_values(results, classification), done)
        if line:
            print(line, flush=True)
            if classification and done % (self.print_interval * VALIDATION_EVERY_PRINTS) == 0:
                self.validate(done)

    def validate(self, done):
        graph, step = self.graph, FLAGS.num_updates
        pre, post = self.sess.run([graph.pre_metric, graph.mean_metrics[step]],
                                  graph.feed(self.batch(done, split='val')))
        print(f'  validation accuracy: pre {pre:.4f}, post {post:.4f}', flush=True)
        if self.writer:
            write_summary(self.writer, {'Validation pre-update accuracy': pre,
                                        'Validation post-update accuracy': post}, done)


def summary_values(results, classification):
    """TensorBoard values of one iteration: the a-set before, the b-set after each step."""
    values = {'Pre-update loss': results['pre_loss']}
    values.update({f'Post-update loss, step {j}': v for j, v in enumerate(results['losses'][1:], 1)})
    if classification:
        values['Pre-update accuracy'] = results['pre_metric']
        values.update({f'Post-update accuracy, step {j}': v
                       for j, v in enumerate(results['metrics'][1:], 1)})
    return values


class ProgressMeter:
    """Means of (pre, post) loss [and accuracy] over a print interval, with speed and ETA."""

    def __init__(self, interval, total, start):
        self.interval, self.total = interval, total
        self.values, self.t0, self.since = [], time.time(), start

    def update(self, done, values):
        self.values.append(values)
        if done % self.interval and done != self.total:
            return None
        means = np.mean(self.values, axis=0)
        sec = (time.time() - self.t0) / max(done - self.since, 1)
        eta = sec * (self.total - done)
        self.values, self.t0, self.since = [], time.time(), done
        text = f'loss {means[0]:.4f} -> {means[1]:.4f}'
        if len(means) == 4:
            text += f', accuracy {means[2]:.4f} -> {means[3]:.4f}'
        return (f'Iteration {done}/{self.total}: {text} '
                f'({sec:.3f} s/it, {eta / 60:.0f} min left)')


def write_summary(writer, values, step):
    summary = tf.Summary(value=[tf.Summary.Value(tag=k, simple_value=float(v))
                                for k, v in values.items()])
    writer.add_summary(summary, step)


# -------------------------------------------------------------- evaluation
def find_checkpoint(exp_dir):
    if FLAGS.checkpoint:
        path = FLAGS.checkpoint
    elif FLAGS.test_iter >= 0:
        path = os.path.join(exp_dir, f'model{FLAGS.test_iter}')
    else:
        path = tf.train.latest_checkpoint(exp_dir)
        if path is None:
            raise UserError(f'no checkpoint in {exp_dir}: train first (same flags, --train=True), '
                            f'or give --checkpoint=PATH')
    if not tf.train.checkpoint_exists(path):
        raise UserError(f'checkpoint {path} not found')
    return path


def evaluate(tasks, exp_dir):
    checkpoint = find_checkpoint(exp_dir)
    graph = build_model(model_config(tasks), FLAGS.test_num_updates, FLAGS.seed)
    split = 'test' if FLAGS.test_set else 'val'
    sess = new_session()
    utils.restore_variables(sess, checkpoint, maml.model_variables(), require_all=True)
    print(f'Evaluating {checkpoint} on {FLAGS.num_test_tasks} {split} tasks, '
          f'K={FLAGS.update_batch_size}, alpha={FLAGS.update_lr}, {FLAGS.test_num_updates} steps',
          flush=True)
    values = []
    for i in range(FLAGS.num_test_tasks):
        rng = data_generator.batch_rng(data_generator.EVAL_SEED, i)
        batch = tasks.sample(rng, 1, split, FLAGS.update_batch_size, query_shots(training=False))
        values.append(sess.run(graph.metricsb, graph.feed(batch))[0])
        if (i + 1) % 100 == 0:
            print(f'  {i + 1} tasks', flush=True)
    os.makedirs(exp_dir, exist_ok=True)
    csv_path = utils.write_eval_results(
        exp_dir, utils.eval_basename(FLAGS.update_batch_size, FLAGS.update_lr), values,
        checkpoint=os.path.basename(checkpoint))
    print_eval_table(values)
    print(f'Wrote {csv_path}')


def print_eval_table(values):
    what = 'MSE' if FLAGS.datasource == 'sinusoid' else 'accuracy'
    means, _, ci95 = utils.summarize_per_step(values)
    for step, (m, c) in enumerate(zip(means, ci95)):
        print(f'  step {step:2d}: {what} {m:.4f} +- {c:.4f}')


# -------------------------------------------------------------------- main
def run():
    validate_flags()
    exp_dir = experiment_dir()
    if FLAGS.train:
        tasks = load_tasks(['train'] if FLAGS.datasource == 'sinusoid' else ['train', 'val'])
        os.makedirs(exp_dir, exist_ok=True)
        Trainer(tasks, exp_dir).run()
    else:
        evaluate(load_tasks(['test' if FLAGS.test_set else 'val']), exp_dir)


def main(argv):
    del argv
    try:
        run()
    except UserError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    app.run(main)
