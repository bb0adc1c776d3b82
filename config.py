"""What a run is: the command-line flags, the per-datasource choices, and RunConfig.

The flags keep the original's names and defaults. Everything downstream (the trainer,
the evaluation, the scripts) reads a RunConfig built from them once, at the entry point.
"""
import dataclasses
import functools
import json
import math
import os

from absl import flags

from data import loading
from utils import UserError

HERE = os.path.dirname(os.path.abspath(__file__))
NORM_SUFFIX = {'batch_norm': 'batchnorm', 'layer_norm': 'layernorm', 'None': 'nonorm'}
NORMS = tuple(NORM_SUFFIX)


@dataclasses.dataclass(frozen=True)
class Datasource:
    """The choices the original made per datasource; adding a dataset is adding a row."""
    loss: str                        # 'mse' (regression) or 'xent' (classification)
    print_interval: int = 100        # iterations between progress lines
    img_size: int = 0                # image side (0: not images, or read from the data)
    channels: int = 0
    rotate: bool = False             # a random multiple of 90 degrees per class and task
    invert: bool = False             # pixel v becomes 1 - v/255 (Omniglot: ink = 1)
    train_query_shots: int = None    # query set examples per class in training (None: K)
    clip: float = None               # meta-gradients clipped to [-clip, clip]
    flatten_features: bool = False   # flatten the last conv map (else its spatial mean)
    fc_hidden: tuple = (256, 128, 64, 64)   # hidden widths of the FC net

    @property
    def classification(self):
        return self.loss == 'xent'


DATASOURCES = {
    'sinusoid': Datasource(loss='mse', print_interval=1000, fc_hidden=(40, 40)),
    'omniglot': Datasource(loss='xent', img_size=28, channels=1, rotate=True, invert=True),
    'miniimagenet': Datasource(loss='xent', img_size=84, channels=3, train_query_shots=15,
                               clip=10.0, flatten_features=True),
    # your own images (data/prepare_folder.py): miniImagenet's choices; the image size and
    # channels (img_size 0) are read from the prepared folder's record
    'folder': Datasource(loss='xent', train_query_shots=15, clip=10.0, flatten_features=True),
}

MAX_STEPS = 1000   # inner steps: the graph holds one copy of the network per step
MAX_SEED = 2 ** 31 - 1
# Every numeric flag's allowed range, (lowest, highest or None), and the value that
# means "not set" (None: no such value). check() reads nothing else.
RANGES = {
    'num_classes': (1, None, None), 'pretrain_iterations': (0, None, None),
    'metatrain_iterations': (0, None, None), 'meta_batch_size': (1, None, None),
    'update_batch_size': (1, None, None), 'num_updates': (1, MAX_STEPS, None),
    'num_filters': (1, None, None), 'test_iter': (0, None, -1),
    'train_update_batch_size': (1, None, -1), 'seed': (0, MAX_SEED, None),
    'save_interval': (1, None, None), 'print_interval': (1, None, None),
    'test_num_updates': (1, MAX_STEPS, None), 'num_test_tasks': (2, None, None),
    'inter_op_threads': (0, None, None), 'intra_op_threads': (0, None, None),
}
POSITIVE_REALS = {'meta_lr': None, 'update_lr': None, 'train_update_lr': -1}
# What a checkpoint must be evaluated with: the network's shape, and the test split.
ARCHITECTURE = ('datasource', 'num_classes', 'baseline', 'norm', 'num_filters', 'conv', 'max_pool',
                'omniglot_split', 'image_size', 'channels')
SUMMARY_INTERVAL = 100         # TensorBoard summaries
VALIDATION_EVERY_PRINTS = 5    # a validation batch every this many progress lines


def define_flags(fv=flags.FLAGS):
    """Define the flags on `fv`: the original's first, then this port's additions."""
    def on_fv(define):
        return functools.partial(define, flag_values=fv)
    integer, real, boolean, string, enum = map(on_fv, (
        flags.DEFINE_integer, flags.DEFINE_float, flags.DEFINE_bool, flags.DEFINE_string,
        flags.DEFINE_enum))
    enum('datasource', 'sinusoid', sorted(DATASOURCES), 'Task family (folder: your own images, '
         'prepared by data/prepare_folder.py and given as --data_dir).')
    integer('num_classes', 5, 'N in N-way classification (ignored by the sinusoid data).')
    enum('baseline', None, ['oracle'], 'oracle: sinusoid input with amplitude and phase '
         'appended, trained by plain regression. (The pretrained baseline is '
         '--pretrain_iterations=N --metatrain_iterations=0.)')
    integer('pretrain_iterations', 0, 'Iterations of multi-task pretraining (pre-update loss).')
    integer('metatrain_iterations', 15000, 'Meta-training iterations.')
    integer('meta_batch_size', 25, 'Tasks per meta-update.')
    real('meta_lr', 0.001, 'Adam learning rate of the meta-update.')
    integer('update_batch_size', 5, 'K: examples per class for the inner update.')
    real('update_lr', 1e-3, 'alpha: step size of the inner gradient update.')
    integer('num_updates', 1, 'Inner gradient steps during training.')
    enum('norm', 'batch_norm', list(NORMS), 'Normalisation.')
    integer('num_filters', 64, 'Conv filters (the paper uses 32 for miniImagenet).')
    boolean('conv', True, 'Conv net for images (False: FC net 256-128-64-64).')
    boolean('max_pool', False, '2x2 max-pool after stride-1 convs instead of stride-2 convs.')
    boolean('stop_grad', False, 'First-order MAML: no second derivatives through the inner step.')
    boolean('log', True, 'Write TensorBoard summaries.')
    string('logdir', '/tmp/data', 'Where summaries and checkpoints go.')
    boolean('resume', True, 'Resume training from the latest checkpoint of the experiment.')
    boolean('train', True, 'Train (True) or evaluate (False).')
    integer('test_iter', -1, 'Checkpoint iteration to evaluate (-1: latest).')
    boolean('test_set', False, 'Evaluate on the test split (False: validation split).')
    integer('train_update_batch_size', -1, 'K used in training, when evaluating with another K.')
    real('train_update_lr', -1, 'alpha used in training, when evaluating with another alpha.')
    # Added by this port.
    integer('seed', 0, 'Seed for initialisation and task sampling (runs are repeatable).')
    integer('save_interval', 1000, 'Save the whole training state every this many iterations.')
    integer('print_interval', None, 'Print mean losses every this many iterations (default: '
            '1000 for sinusoid, 100 for images); validation runs every 5 prints.')
    string('data_dir', os.path.join(HERE, 'data'), 'Folder holding omniglot_resized/ and '
           'miniImagenet/; with --datasource=folder, the folder data/prepare_folder.py made.')
    string('checkpoint', None, 'Evaluate this checkpoint (path prefix, e.g. logs/x/model60000) '
           "instead of the experiment folder's.")
    integer('test_num_updates', 10, 'Inner steps at evaluation.')
    integer('num_test_tasks', 600, 'Tasks in an evaluation.')
    flags.DEFINE_list('omniglot_split', ['1100', '100'], 'Omniglot characters for meta-train '
                      'and validation; the rest is test.', flag_values=fv)
    integer('inter_op_threads', None, 'TensorFlow inter-op threads (default: the cores this '
            'process may use; 0: TensorFlow decides).')
    integer('intra_op_threads', None, 'TensorFlow intra-op threads (default: half the cores '
            'this process may use, at least 1; 0: TensorFlow decides).')
    boolean('random_init', False, "Evaluate the network's fresh initialisation (seeded by "
            '--seed) instead of a checkpoint, adapted by the same inner loop: the baseline '
            "MAML's initialisation is compared with. Results carry _randominit in their name.")


def available_cores():
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def check_range(name, value, low, high, unset):
    """Refuse `value` of --name outside [low, high] (high None: no limit), unless it is
    the `unset` value, in one line naming the flag."""
    if value is None or value == unset:
        return
    if value < low or (high is not None and value > high):
        allowed = f'at least {low}' if high is None else f'between {low} and {high}'
        unset_text = f', or {unset} for the default' if unset is not None else ''
        raise UserError(f'--{name} must be {allowed}{unset_text} (got {value})')


@dataclasses.dataclass
class RunConfig:
    """One run's settings: the flags' values (their defaults live in define_flags),
    and what follows from them. Built with from_flags or from_args."""
    datasource: str
    num_classes: int
    baseline: str
    pretrain_iterations: int
    metatrain_iterations: int
    meta_batch_size: int
    meta_lr: float
    update_batch_size: int
    update_lr: float
    num_updates: int
    norm: str
    num_filters: int
    conv: bool
    max_pool: bool
    stop_grad: bool
    log: bool
    logdir: str
    resume: bool
    train: bool
    test_iter: int
    test_set: bool
    train_update_batch_size: int
    train_update_lr: float
    seed: int
    save_interval: int
    print_interval: int
    data_dir: str
    checkpoint: str
    test_num_updates: int
    num_test_tasks: int
    omniglot_split: tuple
    inter_op_threads: int
    intra_op_threads: int
    random_init: bool

    def __post_init__(self):
        self.check()

    def check(self):
        """Refuse values no run can use, in one line (a UserError) naming the flag."""
        if self.baseline == 'oracle' and self.datasource != 'sinusoid':
            raise UserError('--baseline=oracle exists for --datasource=sinusoid only')
        for name, (low, high, unset) in RANGES.items():
            check_range(name, getattr(self, name), low, high, unset)
        for name, unset in POSITIVE_REALS.items():
            value = getattr(self, name)
            if value != unset and not (math.isfinite(value) and value > 0):
                also = f', or {unset} for --update_lr' if unset is not None else ''
                raise UserError(f'--{name} must be a positive finite number{also} (got {value})')
        if self.source.classification and self.num_classes < 2:
            raise UserError(f'--num_classes must be at least 2 for classification '
                            f'(got {self.num_classes})')
        if self.train and self.checkpoint:
            raise UserError('--checkpoint is for evaluation (--train=False)')
        if self.random_init and (self.train or self.checkpoint or self.test_iter >= 0):
            raise UserError('--random_init=True evaluates a fresh initialisation: it takes '
                            '--train=False and no --checkpoint or --test_iter')
        if self.train and (self.train_k, self.train_lr) != (self.update_batch_size,
                                                             self.update_lr):
            raise UserError('--train_update_batch_size / --train_update_lr name the K and alpha a '
                            'run was trained with, to evaluate it with others (--train=False); '
                            'to train with them, give --update_batch_size / --update_lr')
        if self.test_iter >= 0 and (self.train or self.checkpoint):
            raise UserError('--test_iter picks the checkpoint to evaluate: it takes --train=False '
                            'and no --checkpoint (training resumes from the latest)')
        if len(self.omniglot_split) != 2 or not all(str(v).isdigit() for v in self.omniglot_split):
            raise UserError(f'--omniglot_split takes two whole numbers, meta-train and validation '
                            f'characters (got {",".join(map(str, self.omniglot_split))})')

    @classmethod
    def from_flags(cls, fv=flags.FLAGS, **overrides):
        """The flags' values (those in `overrides` replaced), checked."""
        values = {f.name: fv[f.name].value for f in dataclasses.fields(cls)}
        return cls(**{**values, **overrides})

    @classmethod
    def from_args(cls, args):
        """A RunConfig from command-line arguments (e.g. ['--datasource=omniglot']),
        parsed on a private set of flags, so the caller's flags are left alone."""
        fv = flags.FlagValues()
        define_flags(fv)
        fv(['main.py', *args])
        return cls.from_flags(fv)

    @property
    def threads(self):
        """(inter-op, intra-op) threads: the flags, or defaults that follow the cores this
        process may use (its CPU affinity, as taskset or a scheduler sets it). One core per
        task of the meta-batch, which map_fn runs side by side, and half as many for the
        work inside an op: on 2 cores 2 and 1, the measured best there."""
        cores = available_cores()
        inter = cores if self.inter_op_threads is None else self.inter_op_threads
        intra = max(1, cores // 2) if self.intra_op_threads is None else self.intra_op_threads
        return inter, intra

    @property
    def source(self):
        return DATASOURCES[self.datasource]

    @property
    def train_k(self):
        """K of training (train_update_batch_size; -1 means the same as now)."""
        if self.train_update_batch_size == -1:
            return self.update_batch_size
        return self.train_update_batch_size

    @property
    def train_lr(self):
        return self.update_lr if self.train_update_lr == -1 else self.train_update_lr

    @property
    def exp_name(self):
        """The original's experiment folder name."""
        name = (f'cls_{self.num_classes}.mbs_{self.meta_batch_size}.ubs_{self.train_k}'
                f'.numstep{self.num_updates}.updatelr{self.train_lr}')
        if self.num_filters != 64:
            name += f'hidden{self.num_filters}'
        if self.max_pool:
            name += 'maxpool'
        if self.stop_grad:
            name += 'stopgrad'
        if self.baseline:
            name += self.baseline
        return name + NORM_SUFFIX[self.norm]

    @property
    def exp_dir(self):
        return os.path.join(self.logdir, self.exp_name)

    @property
    def total_iterations(self):
        return self.pretrain_iterations + self.metatrain_iterations

    @property
    def progress_interval(self):
        return self.print_interval or self.source.print_interval

    @property
    def split_sizes(self):
        return tuple(int(v) for v in self.omniglot_split)

    def query_shots(self, training):
        """query set examples per class: miniImagenet trains on 15, everything else on K."""
        if training and self.source.train_query_shots:
            return self.source.train_query_shots
        return self.update_batch_size

    def training_settings(self):
        """What makes two trainings the same run (recorded in the experiment folder).
        The iteration count is left out: a finished run may be trained further."""
        names = ['datasource', 'num_classes', 'baseline', 'pretrain_iterations', 'meta_batch_size',
                 'meta_lr', 'num_updates', 'norm', 'num_filters', 'conv', 'max_pool', 'stop_grad',
                 'seed']
        settings = {name: getattr(self, name) for name in names}
        settings.update(update_batch_size=self.train_k, update_lr=self.train_lr)
        if self.datasource == 'omniglot':
            settings['omniglot_split'] = list(self.split_sizes)
        if self.datasource == 'folder':
            settings['image_size'], settings['channels'] = self.image_shape
        return settings

    @property
    def image_shape(self):
        """(side, channels) of the images: the datasource's, or a folder's from its record."""
        if self.datasource == 'folder':
            return loading.folder_info(self.data_dir)
        return self.source.img_size, self.source.channels

    def architecture_differences(self, stored):
        """The flags that decide the network or the test split on which `stored` (a
        run's settings.json) differs from this run, as '--name=stored (now ours)'."""
        return [setting_phrase(k, theirs, ours)
                for k, theirs, ours in self.settings_differences(stored, ARCHITECTURE)]

    def settings_differences(self, stored, keys=None):
        """(name, stored value, this run's value) for each training setting (all, or `keys`)
        on which `stored` (a run's settings.json) differs from this run."""
        ours = json.loads(json.dumps(self.training_settings()))
        keys = sorted(set(stored) | set(ours)) if keys is None else keys
        return [(k, stored.get(k), ours.get(k)) for k in keys
                if (k in stored or k in ours) and stored.get(k) != ours.get(k)]

    def model_settings(self, dim_input, dim_output, image_shape=None):
        """The keyword arguments of maml.ModelConfig for data of these dimensions;
        image_shape: (side, channels) of image data (None: not images)."""
        source = self.source
        settings = dict(dim_input=dim_input, dim_output=dim_output, loss=source.loss,
                        update_lr=self.update_lr, update_batch_size=self.update_batch_size,
                        norm=self.norm, stop_grad=self.stop_grad, dim_hidden=source.fc_hidden)
        if image_shape:
            settings.update(conv=self.conv, img_size=image_shape[0], channels=image_shape[1],
                            num_filters=self.num_filters, max_pool=self.max_pool,
                            flatten_features=source.flatten_features)
        return settings

    @property
    def eval_split(self):
        return 'test' if self.test_set else 'val'


DATA_SHAPE_SETTINGS = ('image_size', 'channels')   # settings of the data, not flags


def setting_phrase(name, theirs, ours):
    """'--num_filters=32 (now 64)'; a setting that is no flag but the data's own, such as
    the images' size, in words."""
    if name == 'image_size':
        return f'images of {theirs}x{theirs} (now {ours}x{ours})'
    if name == 'channels':
        return f'images of {theirs} channel(s) (now {ours})'
    return f'--{name}={theirs} (now {ours})'
