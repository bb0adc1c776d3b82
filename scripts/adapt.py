r"""Use a trained model on a new task: adapt it to your support examples with its inner
loop (--test_num_updates steps), then predict your query examples.

  Images: --support holds one folder per class (the folder names are the class names,
  as many as the model's N); --query is a folder of image files (or one file):
    python -m scripts.adapt --checkpoint=logs/omniglot5way/EXPERIMENT/model60000 \
        --support=my_task/support --query=my_task/query --out=predictions.csv
  Sinusoid: --support is a CSV with columns x,y and --query a CSV with column x:
    python -m scripts.adapt --checkpoint=logs/sine_maml/EXPERIMENT/model70000 \
        --support=points.csv --query=xs.csv --out=predictions.csv

The network's flags (--datasource, --num_filters, --update_lr, ...) come from the
settings.json beside the checkpoint; give them as for evaluation where there is none
(the released miniImagenet checkpoint: --datasource=miniimagenet --num_filters=32
--max_pool=True --update_lr=0.01). Images are resized and converted as
data/prepare_folder.py does. Batch norm uses the statistics of the batch it sees, as in
training and evaluation: all query examples are predicted as one batch.
Output: one row per query (file, predicted class, a probability per class; sinusoid: x
and the prediction), written only when everything succeeded.
"""
import csv
import io
import math
import os
import time

import numpy as np
from absl import app, flags

import config
import data_generator
import run_folder
import utils
from data import images, loading
from data.prepared import visible_files
from utils import UserError

FLAGS = flags.FLAGS
# settings.json entries that are flags of main.py, taken when the flag is not given
FROM_SETTINGS = ('datasource', 'num_classes', 'baseline', 'norm', 'num_filters', 'conv',
                 'max_pool', 'update_lr', 'update_batch_size', 'stop_grad', 'num_updates')


def define_flags():
    config.define_flags()
    flags.DEFINE_string('support', None, 'Support set: a folder of class folders, or for '
                        'sinusoid a CSV with columns x,y.')
    flags.DEFINE_string('query', None, 'Query: a folder of images (or one image), or for '
                        'sinusoid a CSV with column x.')
    flags.DEFINE_string('out', None, 'CSV to write the predictions to.')
    for name in ('checkpoint', 'support', 'query', 'out'):
        flags.mark_flag_as_required(name)


def run_from_flags():
    """The RunConfig of the checkpoint: the flags given, the rest from its settings.json;
    and that settings dict ({} when there is none)."""
    checkpoint = run_folder.checkpoint_prefix(FLAGS.checkpoint)
    if not os.path.isfile(checkpoint + '.index'):
        raise UserError(f'checkpoint {checkpoint} not found (its .index file is missing)')
    stored = run_folder.read_settings(os.path.dirname(checkpoint)) or {}
    from_settings = {name: stored[name] for name in FROM_SETTINGS
                     if name in stored and not FLAGS[name].present}
    run = config.RunConfig.from_flags(FLAGS, train=False, **from_settings)
    if run.baseline == 'oracle':
        raise UserError('the oracle needs each point\'s amplitude and phase, not a support set; '
                        'adapt a MAML or pretrained model')
    return run, stored


def image_shape(run, stored):
    if 'image_size' in stored:
        return int(stored['image_size']), int(stored['channels'])
    return run.image_shape


# ------------------------------------------------------------------ inputs
def read_csv_columns(path, columns):
    """{column: float32 array} of a CSV with a header naming `columns` (a byte-order mark,
    as Excel writes, is allowed); a value that is not a finite float32 is refused,
    naming its line."""
    if os.path.isdir(path):
        raise UserError(f'{path} is a folder; a sinusoid model takes CSV files: --support with '
                        f'columns x,y, --query with column x')
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f)
            if not set(columns) <= set(reader.fieldnames or []):
                raise ValueError(f'it needs the header {",".join(columns)}')
            values = {c: [] for c in columns}
            for row in reader:
                for c in columns:
                    values[c].append(finite_value(row[c], path, reader.line_num, c))
    except OSError as err:
        raise UserError(f'cannot read {path} ({err.strerror})') from None
    except (ValueError, TypeError) as err:
        raise UserError(f'{path} is not a CSV of numbers with columns {",".join(columns)} '
                        f'({err})') from None
    if not values[columns[0]]:
        raise UserError(f'{path} holds no rows below its header {",".join(columns)}')
    return {c: np.array(v, dtype=np.float32) for c, v in values.items()}


FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_value(text, path, line, column):
    """A CSV cell as a float that float32 holds finitely, or a UserError naming it."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f'{path} line {line}: {column}={text!r} is not a number') from None
    if not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
        raise UserError(f'{path} line {line}: {column}={text.strip()} is not a finite number '
                        f'(the network computes in float32); correct or remove that row')
    return value


def image_files(path, what):
    """The image files of a folder (visible, sorted), or [path] for one file; a sub-folder,
    whose images would not be used, is refused, named."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f'{what} {path} is not a folder or a file')
    nested = loading.sorted_dirs(path)
    if nested:
        raise UserError(f'{what} {path} holds sub-folders ({", ".join(nested[:3])}), whose '
                        f'images would not be used; put the images directly in it')
    found = [os.path.join(path, f) for f in visible_files(path)]
    if not found:
        raise UserError(f'{what} {path} holds no files')
    return found


def image_rows(paths, run, shape):
    """The network's input rows of image files; a file that is not an image is named."""
    arrays = []
    for path in paths:
        try:
            arrays.append(images.pixels(path, *shape))
        except images.ImageReadError as err:
            raise UserError(f'{path} is not a readable image ({err}); nothing was '
                            f'written') from None
    return data_generator.image_inputs(np.stack(arrays), run.source.invert)


def image_task(run, shape):
    """(support inputs, support labels, query inputs, query files, class names, every
    file read)."""
    if not os.path.isdir(FLAGS.support):
        raise UserError(f'--support={FLAGS.support} is not a folder of class folders')
    classes = loading.sorted_dirs(FLAGS.support)
    loose = [f for f in visible_files(FLAGS.support) if os.sep not in f]
    if loose:
        raise UserError(f'--support={FLAGS.support} holds files beside its class folders '
                        f'({", ".join(loose[:3])}), which would not be used; move them into '
                        f'a class folder or away')
    if len(classes) != run.num_classes:
        raise UserError(f'--support holds {len(classes)} class folders, but the model is '
                        f'{run.num_classes}-way: give it exactly {run.num_classes}')
    support, labels, read = [], [], []
    for label, name in enumerate(classes):
        files = image_files(os.path.join(FLAGS.support, name), 'class folder')
        support.append(image_rows(files, run, shape))
        labels += [label] * len(files)
        read += files
    query_files = image_files(FLAGS.query, '--query')
    return (np.concatenate(support), data_generator.one_hot(np.array(labels), run.num_classes),
            image_rows(query_files, run, shape), query_files, classes, read + query_files)


# ------------------------------------------------------------------ adapting
def predict(run, shape, support, support_labels, query):
    """The network's outputs on the query after adapting to the support set with
    --test_num_updates steps, taken one at a time (maml.StepGraph)."""
    import maml  # TensorFlow, quietly: seconds, so only once input is read
    from tf_quiet import session, tf
    if shape:
        maml.check_image_side(shape[0], run.max_pool and run.conv)
    dim_input, dim_output = support.shape[1], support_labels.shape[1]
    cfg = maml.ModelConfig(**run.model_settings(dim_input, dim_output, shape))
    # the loss is divided by K, the support examples per class
    cfg.update_batch_size = len(support) / (dim_output if cfg.loss == 'xent' else 1)
    graph = maml.build_step_graph(cfg, run.seed)
    checkpoint = run_folder.find_checkpoint(run)   # (restoring checks that it fits the network)
    sess = session(run.threads)
    try:
        maml.restore_variables(sess, checkpoint, maml.model_variables(), require_all=True)
    except tf.errors.OpError as err:
        raise UserError(f'checkpoint {checkpoint} is unreadable ({utils.first_line(err)})') \
            from None
    print(f'Adapting to {len(support)} support examples: {run.test_num_updates} steps of '
          f'{run.update_lr}', flush=True)
    outputs = graph.run(sess, support, support_labels, query, run.test_num_updates,
                        StepProgress(run.test_num_updates))
    if not np.all(np.isfinite(outputs)):
        raise UserError(f'the adaptation diverged: after {run.test_num_updates} steps of '
                        f'{run.update_lr} the predictions are not finite; nothing was written. '
                        f'Lower --update_lr or --test_num_updates')
    return outputs


class StepProgress:
    """Prints 'adapting: step n/N' every few seconds on a long adaptation."""

    def __init__(self, total, every=5.0):
        self.total, self.every, self.last = total, every, time.time()

    def __call__(self, step):
        if time.time() - self.last >= self.every:
            self.last = time.time()
            print(f'  adapting: step {step}/{self.total}', flush=True)


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def classify(run, stored):
    shape = image_shape(run, stored)
    support, labels, query, files, classes, read = image_task(run, shape)
    check_out_is_no_input(FLAGS.out, read)
    probabilities = softmax(predict(run, shape, support, labels, query))
    rows = [['file', 'predicted'] + [f'p_{c}' for c in classes]]
    for path, p in zip(files, probabilities):
        rows.append([os.path.basename(path), classes[int(np.argmax(p))]]
                    + [f'{v:.6f}' for v in p])
    return rows


def regress(run, stored):
    if os.path.isdir(FLAGS.support) and not stored and not FLAGS['datasource'].present:
        raise UserError(f'--support={FLAGS.support} is a folder of images, but the checkpoint '
                        f'has no {run_folder.SETTINGS_FILE} beside it to name its datasource, so '
                        f'it was taken for a sinusoid model: give the flags it was trained '
                        f'with, such as --datasource=miniimagenet')
    check_out_is_no_input(FLAGS.out, [FLAGS.support, FLAGS.query])
    points = read_csv_columns(FLAGS.support, ('x', 'y'))
    xs = read_csv_columns(FLAGS.query, ('x',))['x']
    predictions = predict(run, None, points['x'][:, None], points['y'][:, None], xs[:, None])
    return [['x', 'prediction']] + [[f'{x:g}', f'{y:.6f}'] for x, y in zip(xs, predictions[:, 0])]


def check_out(path):
    """Refuse an --out that cannot be a file before any work is done."""
    if os.path.isdir(path):
        raise UserError(f'--out={path} is a folder; give a file, such as '
                        f'{os.path.join(path, "predictions.csv")}')
    parent = os.path.dirname(path) or '.'
    if not os.path.isdir(parent):
        raise UserError(f'--out={path}: the folder {parent} does not exist')


def check_out_is_no_input(out, inputs):
    """Refuse an --out that is one of the files read, or lies in --support or --query."""
    target = os.path.realpath(out)
    for path in inputs:
        if os.path.realpath(path) == target:
            raise UserError(f'--out={out} is one of the inputs ({path}); writing the predictions '
                            f'there would replace it: give another file')
    for name in ('support', 'query'):
        folder = FLAGS[name].value
        if os.path.isdir(folder) and target.startswith(os.path.realpath(folder) + os.sep):
            raise UserError(f'--out={out} lies inside --{name}={folder}, where it would be read '
                            f'as an input next time: give a file outside it')


def write_rows(path, rows):
    text = io.StringIO()
    csv.writer(text, lineterminator='\n').writerows(rows)
    utils.write_atomically(path, text.getvalue())


def main(argv):
    rows = utils.exit_on_user_error(lambda: adapt(argv))
    print(f'Wrote {len(rows) - 1} predictions to {FLAGS.out}')


def adapt(argv):
    """Read the input, adapt, predict, write --out; the rows written."""
    if len(argv) > 1:
        raise UserError(f'unexpected argument {argv[1]!r}; flags take the form --name=value')
    check_out(FLAGS.out)
    run, stored = run_from_flags()
    rows = regress(run, stored) if run.datasource == 'sinusoid' else classify(run, stored)
    write_rows(FLAGS.out, rows)
    return rows


if __name__ == '__main__':
    define_flags()
    app.run(main)
