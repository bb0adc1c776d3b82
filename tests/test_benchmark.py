"""The speed benchmark: main.py timed on synthetic data, side by side with a variant."""
import os

import pytest

from tests.helpers import run_script


def benchmark(*args):
    return run_script('-m scripts.benchmark', *args)


@pytest.mark.slow
def test_benchmark_times_this_main_with_and_without_an_environment_variable():
    proc = benchmark('sine_maml', '--env', 'TF_ENABLE_ONEDNN_OPTS=0', '--iterations', '50')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header, row = proc.stdout.strip().splitlines()
    off = 'TF_ENABLE_ONEDNN_OPTS=0'
    assert header == (f'| configuration | {off} s/it | {off} peak MB '
                      f'| this s/it | this peak MB | {off} / this |')
    cells = [cell.strip() for cell in row.strip('| ').split('|')]
    assert cells[0] == 'sine_maml'
    seconds = [float(cells[1]), float(cells[3])]
    assert all(0 < s < 1 for s in seconds)
    assert cells[5].endswith('x') and float(cells[5][:-1]) > 0      # the ratio of the two


@pytest.mark.slow
def test_benchmark_rejects_an_unknown_configuration_and_a_bad_env():
    unknown = benchmark('omniglot_99way')
    assert unknown.returncode == 2 and 'unknown configuration omniglot_99way' in unknown.stderr
    bad_env = benchmark('sine_maml', '--env', 'TF_ENABLE_ONEDNN_OPTS')
    assert bad_env.returncode == 2 and 'give NAME=VALUE' in bad_env.stderr
    no_lines = benchmark('sine_maml', '--iterations', '0')
    assert no_lines.returncode == 2 and '--iterations must be at least 1' in no_lines.stderr


@pytest.mark.slow
def test_benchmark_pins_each_variant_to_the_cores_given():
    proc = benchmark('sine_maml', '--cpus', '0', '--cpus', '0,1', '--iterations', '50')
    if len(os.sched_getaffinity(0)) < 2:
        assert proc.returncode == 2 and 'this process may use cores' in proc.stderr
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = proc.stdout.strip().splitlines()[0]
    assert header.startswith('| configuration | this cpus 0 s/it | this cpus 0 peak MB | '
                             'this cpus 0,1 s/it |')
    assert header.endswith('| this cpus 0 / this cpus 0,1 |')


@pytest.mark.slow
@pytest.mark.parametrize('args, message', [
    (['--cpus', '99'], 'this process may use cores'),
    (['--cpus', 'a'], 'takes core numbers such as 0,1'),
    (['--compare', '/nonexistent'], '--compare /nonexistent: no main.py there'),
])
def test_benchmark_refuses_cores_and_checkouts_it_cannot_use(args, message):
    proc = benchmark('sine_maml', *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_thread_defaults_follow_the_cores_the_process_may_use(tmp_path):
    from config import RunConfig
    allowed = os.sched_getaffinity(0)
    run = RunConfig.from_args(['--logdir', str(tmp_path)])
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert run.threads == (1, 1)
        if len(allowed) >= 2:
            os.sched_setaffinity(0, set(sorted(allowed)[:2]))
            assert run.threads == (2, 1)              # what 2 cores always had
        if len(allowed) >= 4:
            os.sched_setaffinity(0, set(sorted(allowed)[:4]))
            assert run.threads == (4, 2)
    finally:
        os.sched_setaffinity(0, allowed)
    pinned = RunConfig.from_args(['--logdir', str(tmp_path), '--inter_op_threads=3',
                                  '--intra_op_threads=0'])
    assert pinned.threads == (3, 0)


@pytest.mark.slow
def test_startup_benchmark_times_loading_and_checking_the_training_splits(tmp_path):
    """--startup: this checkout and --compare's, in turns, each turn a table row."""
    from data import synthetic
    synthetic.miniimagenet_tree(str(tmp_path), classes=(5, 5, 5), per_class=20)
    from tests.helpers import ROOT
    proc = benchmark('--startup', 'miniimagenet', '--data_dir', str(tmp_path), '--repeat', '2',
                     '--compare', ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == '| miniimagenet start-up | other s | this s |'
    assert [line.split(' | ')[0] for line in lines[1:]] == ['| turn 1', '| turn 2', '| median']
    assert all(0 < float(cell) < 60 for line in lines[1:]
               for cell in line.strip('| ').split(' | ')[1:])
    proc = benchmark('--startup', 'miniimagenet', '--data_dir', str(tmp_path / 'none'))
    assert proc.returncode != 0 and 'loading failed' in proc.stderr
