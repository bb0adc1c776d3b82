"""config.py: flag values refused before anything runs."""
import os

import pytest

from config import RunConfig
from tests.helpers import sine, sine_dir
from utils import UserError


@pytest.mark.parametrize('flag,message', [
    ('--update_lr=nan', '--update_lr must be a positive finite number'),
    ('--update_lr=inf', '--update_lr must be a positive finite number'),
    ('--meta_lr=nan', '--meta_lr must be a positive finite number'),
    ('--meta_lr=0', '--meta_lr must be a positive finite number'),
    ('--meta_batch_size=0', '--meta_batch_size must be at least 1'),
    ('--omniglot_split=abc', '--omniglot_split takes two whole numbers'),
    ('--baseline=oracle --datasource=omniglot',
     '--baseline=oracle exists for --datasource=sinusoid only'),
    ('--print_interval=0', '--print_interval must be at least 1'),
    ('--test_iter=-2', '--test_iter must be at least 0, or -1 for the default'),
    ('--seed=-1', '--seed must be between 0 and 2147483647'),
    ('--num_updates=5000', '--num_updates must be between 1 and 1000'),
    ('--test_num_updates=0', '--test_num_updates must be between 1 and 1000'),
    ('--num_test_tasks=1', '--num_test_tasks must be at least 2'),
    ('--num_classes=1 --datasource=omniglot', '--num_classes must be at least 2 for classif'),
    ('--num_classes=1', None),                    # the sinusoid ignores it
    ('--metatrain_iterations=-1', '--metatrain_iterations must be at least 0'),
    ('--intra_op_threads=-1', '--intra_op_threads must be at least 0'),
    ('--train_update_batch_size=0', '--train_update_batch_size must be at least 1, or -1'),
    ('--train_update_lr=0', '--train_update_lr must be a positive finite number'),
    ('--train=False --checkpoint=x', None),
    ('--checkpoint=x', '--checkpoint is for evaluation'),
    ('--train=False --test_iter=5', None),
    ('--train_update_lr=0.1', '--train_update_batch_size / --train_update_lr name the K and'),
    ('--train_update_batch_size=3', '--train_update_batch_size / --train_update_lr name the K'),
    ('--train_update_batch_size=5 --train_update_lr=0.01', None),    # the same as training's
    ('--train=False --train_update_lr=0.1', None),
    ('--test_iter=5', '--test_iter picks the checkpoint to evaluate: it takes --train=False'),
    ('--train=False --checkpoint=x --test_iter=5', '--test_iter picks the checkpoint to eval'),
    ('--train=False --random_init=True --test_iter=5', 'takes --train=False and no --checkp'),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, flag, message):
    """RunConfig.from_args, which the scripts use, checks them as the command line does."""
    if message is None:                  # a good value is let through
        RunConfig.from_args([*sine(tmp_path), *flag.split()])
        return
    with pytest.raises(UserError, match=message.replace('+', r'\+')):
        RunConfig.from_args([*sine(tmp_path), *flag.split()])
    assert not os.path.exists(sine_dir(str(tmp_path)))

