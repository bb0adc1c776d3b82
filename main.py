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
import sys
import time

import numpy as np
from absl import app, flags

import config
import data_generator
import results
import run_folder
from config import RunConfig
from utils import StopRequest, UserError, exit_on_user_error, first_line


def tensorflow_and_model():
    """(tf, maml), imported on first use: TensorFlow's start-up takes seconds, which
    --help, a refused flag and a run with nothing to train do without."""
    import maml
    from tf_quiet import tf
    return tf, maml


# ------------------------------------------------------------------ set-up
def load_tasks(run, splits, training):
    """The task sampler with `splits` loaded, refusing at once tasks larger than the data
    and images too small for the network."""
    if run.conv and run.datasource != 'sinusoid':
        _, maml = tensorflow_and_model()
        maml.check_image_side(run.image_shape[0], run.max_pool)
    tasks = data_generator.make_tasks(run.datasource, run.data_dir, splits, run.num_classes,
                                      oracle=run.baseline == 'oracle',
                                      omniglot_split=run.split_sizes)
    for split in splits:
        tasks.check_shots(split, run.update_batch_size, run.query_shots(training))
    return tasks


def new_session(run):
    from tf_quiet import session
    return session(run.threads)


def build_graph(run, tasks, num_steps):
    _, maml = tensorflow_and_model()
    image_shape = (tasks.img_size, tasks.channels) if hasattr(tasks, 'img_size') else None
    cfg = maml.ModelConfig(**run.model_settings(tasks.dim_input, tasks.dim_output, image_shape))
    return maml.build_graph(cfg, num_steps, run.seed)


# ---------------------------------------------------------------- training
def training_batch(run, tasks, itr, split='train'):
    """The meta-batch of iteration itr + 1: a function of (seed, iteration, split)."""
    rng = data_generator.batch_rng(run.seed, itr, 0 if split == 'train' else 1)
    return tasks.sample(rng, run.meta_batch_size, split, run.update_batch_size,
                        run.query_shots(training=True))


class Trainer:
    """Meta-training of one run: the graph, its session, and the loop."""

    def __init__(self, run, tasks):
        tf, maml = self.tf, self.maml = tensorflow_and_model()
        self.run, self.tasks, self.exp_dir = run, tasks, run.exp_dir
        self.graph = build_graph(run, tasks, run.num_updates)
        oracle = run.baseline == 'oracle'
        self.global_step, self.ops = maml.build_train_ops(
            self.graph, run.meta_lr, run.source.clip,
            pretrain=run.pretrain_iterations > 0 or oracle,
            metatrain=run.metatrain_iterations > 0 and not oracle)
        # relative paths in the state file, so a committed or moved run still resumes
        self.saver = tf.train.Saver(tf.global_variables(),
                                    max_to_keep=run_folder.KEPT_CHECKPOINTS,
                                    save_relative_paths=True)
        self.sess = new_session(run)
        self.writer = tf.summary.FileWriter(self.exp_dir) if run.log else None
        self.weights_finite = tf.reduce_all([tf.reduce_all(tf.is_finite(v))
                                             for v in tf.trainable_variables()])
        self.last_saved = None

    def op_for(self, itr):
        if itr < self.run.pretrain_iterations or 'metatrain' not in self.ops:
            return self.ops['pretrain']
        return self.ops['metatrain']

    def restore_or_init(self):
        """Initialise, then restore the newest readable checkpoint; returns its step."""
        tf, maml = self.tf, self.maml
        self.sess.run(tf.global_variables_initializer())
        found = run_folder.checkpoints_in(self.exp_dir)
        for i, (_, path) in enumerate(found):
            try:
                missing = maml.restore_variables(self.sess, path, tf.global_variables())
            except (tf.errors.OpError, ValueError) as err:
                print(f'Note: {os.path.basename(path)} is unreadable ({first_line(err)}); '
                      f'trying the checkpoint before it', flush=True)
                continue
            if missing:
                print(f'Note: {len(missing)} variables not in {path} start fresh: {missing[:3]}...')
            # the ones training prunes, oldest first (milestones are never pruned)
            self.saver.recover_last_checkpoints([p for step, p in found[i:][::-1]
                                                 if step % run_folder.MILESTONE_INTERVAL])
            self.last_saved = os.path.basename(path)
            return int(self.sess.run(self.global_step))
        if found:
            raise UserError(f'no readable checkpoint in {self.exp_dir}; move the folder away to '
                            f'start over, or give another --logdir')
        return 0

    def batch(self, itr, split='train'):
        return training_batch(self.run, self.tasks, itr, split)

    def step(self, itr, summarize=False, **run_options):
        """Iteration itr + 1: sample its batch, run the update; the fetched figures.
        run_options go to Session.run (e.g. options and run_metadata for a trace)."""
        return self.sess.run(self.fetches(itr, summarize), self.graph.feed(self.batch(itr)),
                             **run_options)

    def fetches(self, itr, summarize):
        """The train op and the progress figures, which cost no extra forward pass.

        On summary iterations also every step's query set loss and metric, as the
        reference's summaries held; those need the query set forward passes of the
        earlier steps, which the meta-gradient does not, so only then are they run.
        """
        graph, step = self.graph, self.run.num_updates
        fetches = {'op': self.op_for(itr), 'pre_loss': graph.pre_loss,
                   'post_loss': graph.meta_losses[step], 'pre_metric': graph.pre_metric,
                   'post_metric': graph.mean_metrics[step]}
        if summarize:
            fetches.update(losses=graph.meta_losses, metrics=graph.mean_metrics)
        return fetches

    def save(self, done):
        if not self.sess.run(self.weights_finite):
            raise self.diverged(done, 'the weights are no longer finite')
        try:
            path = self.saver.save(self.sess, os.path.join(self.exp_dir, f'model{done}'),
                                   write_meta_graph=False)
        except (self.tf.errors.OpError, OSError) as err:
            kept = f'{self.last_saved} is kept' if self.last_saved else 'nothing was saved'
            raise UserError(f'cannot save model{done} in {self.exp_dir} ({first_line(err)}); '
                            f'{kept}. Free some space and run the same command') from None
        if done % run_folder.MILESTONE_INTERVAL == 0:   # kept for evaluations: not pruned
            self.saver.set_last_checkpoints_with_time(
                [(p, time.time()) for p in self.saver.last_checkpoints if p != path])
        if self.writer:
            self.writer.flush()
        self.last_saved = os.path.basename(path)
        return path

    def diverged(self, done, what):
        kept = (f'the last saved checkpoint is {self.last_saved}' if self.last_saved
                else 'nothing was saved')
        return UserError(f'training diverged at iteration {done}: {what}; it was not saved and '
                         f'{kept}. Lower --meta_lr or --update_lr and train again')

    def train(self):
        start, total = self.restore_or_init(), self.run.total_iterations
        if total == 0:
            print('Nothing to train: --metatrain_iterations and --pretrain_iterations are both 0.')
            return
        if start >= total:
            print(f'Nothing to train: {self.exp_dir} already holds {start} of {total} '
                  f'iterations. Evaluate it with --train=False.')
            return
        print(f'Training {self.exp_dir}: iterations {start + 1}..{total}', flush=True)
        stop = StopRequest('Stopping: saving the training state after this iteration...')
        meter = ProgressMeter(self.run.progress_interval, total, start)
        for itr in range(start, total):
            done = itr + 1
            summarize = self.writer is not None and done % config.SUMMARY_INTERVAL == 0
            results = self.step(itr, summarize)
            if not (np.isfinite(results['pre_loss']) and np.isfinite(results['post_loss'])):
                raise self.diverged(done, f'the loss is {results["pre_loss"]} before and '
                                          f'{results["post_loss"]} after adaptation')
            self.log(done, results, meter)
            if done % self.run.save_interval == 0 or done == total or stop.requested:
                self.save(done)
            if stop.requested:
                print(f'Saved after iteration {done}; run the same command to resume.')
                sys.exit(130)
        print(f'Finished: {total} iterations, checkpoint {self.exp_dir}/model{total}')

    def log(self, done, results, meter):
        classification = self.run.source.classification
        names = ['pre_loss', 'post_loss']
        if classification:
            names += ['pre_metric', 'post_metric']
        line = meter.update(done, [results[n] for n in names])
        if 'losses' in results:
            write_summary(self.writer, summary_values(results, classification), done)
        if line:
            print(line, flush=True)
            every = self.run.progress_interval * config.VALIDATION_EVERY_PRINTS
            if classification and done % every == 0:
                self.validate(done)

    def validate(self, done):
        graph, step = self.graph, self.run.num_updates
        pre, post = self.sess.run([graph.pre_metric, graph.mean_metrics[step]],
                                  graph.feed(self.batch(done, split='val')))
        print(f'  validation accuracy: pre {pre:.4f}, post {post:.4f}', flush=True)
        if self.writer:
            write_summary(self.writer, {'Validation pre-update accuracy': pre,
                                        'Validation post-update accuracy': post}, done)


def summary_values(results, classification):
    """TensorBoard values of one iteration: the support set before, the query set after
    each step."""
    values = {'Pre-update loss': results['pre_loss']}
    values.update({f'Post-update loss, step {j}': v
                   for j, v in enumerate(results['losses'][1:], 1)})
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
    tf, _ = tensorflow_and_model()
    summary = tf.Summary(value=[tf.Summary.Value(tag=k, simple_value=float(v))
                                for k, v in values.items()])
    writer.add_summary(summary, step)


# -------------------------------------------------------------- evaluation


def restore_for_evaluation(sess, run, checkpoint):
    """Restore `checkpoint`, or without one (--random_init) initialise the network afresh,
    seeded by --seed; (what was evaluated as the result files name it, and as printed).
    The newest checkpoint of a folder still being trained may be pruned before it is
    restored: then the newest one now is taken."""
    tf, maml = tensorflow_and_model()
    if checkpoint is None:
        sess.run(tf.variables_initializer(maml.model_variables()))
        return results.random_init_label(run.seed), f'a random initialisation (seed {run.seed})'
    chosen_for_us = not run.checkpoint and run.test_iter < 0
    while True:
        try:
            maml.restore_variables(sess, checkpoint, maml.model_variables(), require_all=True)
            return os.path.basename(checkpoint), checkpoint
        except tf.errors.OpError as err:
            if chosen_for_us and not os.path.isfile(checkpoint + '.index'):
                checkpoint = run_folder.find_checkpoint(run)     # pruned meanwhile
                continue
            raise UserError(f'checkpoint {checkpoint} is unreadable ({first_line(err)})'
                            f'{run_folder.earlier_checkpoint_hint(checkpoint)}') from None


def evaluate(run):
    """The paper's protocol: num_test_tasks tasks one at a time, the metric after
    0..test_num_updates steps; writes the reference's CSV and pickle."""
    checkpoint = run_folder.checkpoint_to_evaluate(run)
    tasks = load_tasks(run, [run.eval_split], training=False)
    if checkpoint:
        run_folder.note_other_data(run, checkpoint)
    graph = build_graph(run, tasks, run.test_num_updates)
    sess = new_session(run)
    label, what = restore_for_evaluation(sess, run, checkpoint)
    stop = StopRequest()
    print(f'Evaluating {what} on {run.num_test_tasks} {run.eval_split} tasks, '
          f'K={run.update_batch_size}, alpha={run.update_lr}, {run.test_num_updates} steps',
          flush=True)
    values = []
    for i in range(run.num_test_tasks):
        if stop.requested:
            raise KeyboardInterrupt      # main() reports it: nothing is written
        rng = data_generator.batch_rng(data_generator.EVAL_SEED, i)
        batch = tasks.sample(rng, 1, run.eval_split, run.update_batch_size,
                             run.query_shots(training=False))
        values.append(sess.run(graph.metricsb, graph.feed(batch))[0])
        if (i + 1) % 100 == 0:
            print(f'  {i + 1} tasks', flush=True)
    metric = 'accuracy' if run.source.classification else 'MSE'
    print('\n'.join(results.eval_table(values, metric)))
    name = results.eval_basename(run.update_batch_size, run.update_lr, run.eval_split,
                                 run.num_test_tasks, run.random_init)
    print(f'Wrote {write_results(run, values, name, label)}')
    write_eval_summary(run, values, metric, name, label)


def write_eval_summary(run, values, what, name, checkpoint):
    """The evaluation's mean before adaptation, after training's number of steps and
    after the last, as TensorBoard points at the checkpoint's iteration, in a folder
    named like the CSV: a run's 600-task evaluations draw a curve beside its training."""
    iteration = run_folder.checkpoint_iteration(checkpoint)
    if not run.log or iteration is None:
        return
    tf, _ = tensorflow_and_model()
    means, _, _ = results.summarize_per_step(values)
    steps = sorted({0, min(run.num_updates, len(means) - 1), len(means) - 1})
    writer = tf.summary.FileWriter(os.path.join(run.exp_dir, name))
    write_summary(writer, {f'Evaluation/{run.eval_split} {what}, step {step}': means[step]
                           for step in steps}, iteration)
    writer.close()


def write_results(run, values, name, checkpoint):
    """The CSV and pickle of an evaluation; an older result of another checkpoint
    under the same name is kept under a name of its own."""
    run_folder.check_writable(run.exp_dir)
    moved = results.set_aside_other_checkpoints_result(run.exp_dir, name, checkpoint)
    if moved:
        print(f'The result of another checkpoint under {name} is kept as {moved}')
    return results.write_eval_results(run.exp_dir, name, values, checkpoint=checkpoint,
                                      split=run.eval_split)


# -------------------------------------------------------------------- main
def execute(run):
    """Train or evaluate, as the run says."""
    if not run.train:
        evaluate(run)
        return
    with run_folder.training_start(run) as to_train:
        if not to_train:
            return
        tasks = load_tasks(run, ['train'] if run.datasource == 'sinusoid' else ['train', 'val'],
                           training=True)
        run_folder.check_training_data(run)
        Trainer(run, tasks).train()


def refuse_stray_words(argv):
    """absl leaves words that are not flags in argv: `--train False` would otherwise
    drop the False silently and train."""
    if len(argv) > 1:
        stray = argv[1]
        position = sys.argv.index(stray) if stray in sys.argv else 0
        after = f' after {sys.argv[position - 1]}' if position > 1 else ''
        raise UserError(f'unexpected argument {stray!r}{after}: write flags as --name=value, '
                        f'e.g. --train=False; nothing was run')


def main(argv):
    exit_on_user_error(lambda: (refuse_stray_words(argv), execute(RunConfig.from_flags())),
                       # before a StopRequest, a second Ctrl-C, or a stopped evaluation
                       interrupted='interrupted: what was saved is kept; run the same command '
                                   'to go on')


if __name__ == '__main__':
    config.define_flags()
    flags.adopt_module_key_flags(config)   # --help lists them as main.py's own
    app.run(main)
