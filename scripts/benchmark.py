"""Seconds per training iteration and peak memory of main.py, for the paper's configurations.

Runs main.py itself, so the time is what a user waits for (task sampling included), on
synthetic data of the right shapes (no dataset needed), one process per configuration.
The speed is read from main.py's progress lines after the first (which holds the
graph's warm-up); the peak memory is the process's maximum resident set.

  python -m scripts.benchmark omniglot5way miniimagenet1shot
  python -m scripts.benchmark all
  python -m scripts.benchmark all --compare ../other-checkout   # that main.py too, side by side
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

from data import synthetic
from scripts import experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# iterations per progress line; the benchmark runs three lines and times the last two
INTERVALS = {'sinusoid': 500, 'omniglot': 10, 'miniimagenet': 4}
# synthetic data: enough classes for 20-way, enough images for K + 15 queries
OMNIGLOT_SPLIT = '--omniglot_split=30,30'
SKIPPED = {'sine_maml_seed2'}    # the same configuration as sine_maml


def configurations():
    return {e.name: e for e in experiments.experiments() if e.name not in SKIPPED}


def make_data(root):
    synthetic.omniglot_resized_tree(root, alphabets=3, characters=30)
    synthetic.miniimagenet_tree(root, classes=(10, 5, 5), per_class=20)
    return root


def benchmark(name, exp, data_dir, main_py):
    interval = INTERVALS[exp.datasource]
    with tempfile.TemporaryDirectory() as logdir:
        args = [sys.executable, main_py, *exp.train_flags, *exp.iteration_flags(3 * interval),
                f'--print_interval={interval}', f'--save_interval={10 * interval}', '--log=False',
                f'--data_dir={data_dir}', f'--logdir={logdir}', OMNIGLOT_SPLIT]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
        # one pipe for both streams (reading two in turn can deadlock); wait4 gives the
        # child's own peak memory
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=os.path.dirname(main_py))
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f'error: {main_py} failed on {name}:\n{out[-2000:]}')
    speeds = [float(s) for s in re.findall(r'\(([\d.]+) s/it', out)]
    if len(speeds) < 3:
        raise SystemExit(f'error: {main_py} printed {len(speeds)} progress lines on {name}')
    return sum(speeds[1:]) / len(speeds[1:]), usage.ru_maxrss / 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    names = sorted(configurations())
    parser.add_argument('configs', nargs='+', help='"all" or some of: ' + ', '.join(names))
    parser.add_argument('--compare', help='another checkout of this project: time its main.py too')
    args = parser.parse_args()
    args.configs = names if args.configs == ['all'] else args.configs
    unknown = sorted(set(args.configs) - set(names))
    if unknown:
        parser.error(f'unknown configuration {", ".join(unknown)}; choose from {", ".join(names)}')
    return args


def main():
    args = parse_args()
    mains = {'this': os.path.join(ROOT, 'main.py')}
    if args.compare:
        mains = {'other': os.path.join(os.path.abspath(args.compare), 'main.py'), **mains}
    header = ' | '.join(f'{k} s/it | {k} peak MB' for k in mains)
    print(f'| configuration | {header} |' + ('' if len(mains) == 1 else ' other / this |'), flush=True)
    chosen = configurations()
    with tempfile.TemporaryDirectory() as data_dir:
        make_data(data_dir)
        for name in args.configs:
            results = [benchmark(name, chosen[name], data_dir, path) for path in mains.values()]
            cells = ' | '.join(f'{s:.3f} | {m:.0f}' for s, m in results)
            ratio = '' if len(results) == 1 else f' {results[0][0] / results[1][0]:.2f}x |'
            print(f'| {name} | {cells} |{ratio}', flush=True)


if __name__ == '__main__':
    main()
