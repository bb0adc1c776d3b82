"""The speed benchmark: main.py timed on synthetic data, side by side with a variant."""

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
