"""Seconds per training iteration and peak memory of main.py, for the paper's configurations.

Runs main.py itself, so the time is what a user waits for (task sampling included), on
synthetic data of the right shapes (no dataset needed), one process per configuration.
The speed is read from main.py's progress lines after the first (which holds the
graph's warm-up); the peak memory is the process's maximum resident set.

  python -m scripts.benchmark omniglot5way miniimagenet1shot
  python -m scripts.benchmark all
  python -m scripts.benchmark all --compare ../other-checkout   # that main.py too, side by side
  python -m scripts.benchmark all --env TF_ENABLE_ONEDNN_OPTS=0   # this main.py with that set too
  python -m scripts.benchmark sine_maml --iterations 50   # a quicker, rougher look
  python -m scripts.benchmark omniglot5way --cpus 0 --cpus 0,1   # on core 0, then on 0 and 1
  python -m scripts.benchmark --startup miniimagenet --data_dir data --compare ../other

--startup times what a training run does before its first iteration with real data:
loading and checking the prepared splits it trains on (miniImagenet: train and val),
in turns with the --compare checkout, --repeat times each.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

from data import synthetic
from scripts import experiments
from scripts.steps import ROOT

# iterations per progress line; the benchmark runs three lines and times the last two
INTERVALS = {'sinusoid': 500, 'omniglot': 10, 'miniimagenet': 4}
# synthetic data: enough classes for 20-way, enough images for K + 15 query examples
OMNIGLOT_SPLIT = '--omniglot_split=30,30'


def configurations():
    return {e.name: e for e in experiments.experiments()}


def make_data(root, datasources):
    """Synthetic data for those of `datasources` that read a dataset."""
    if 'omniglot' in datasources:
        synthetic.omniglot_resized_tree(root, alphabets=3, characters=30)
    if 'miniimagenet' in datasources:
        synthetic.miniimagenet_tree(root, classes=(10, 5, 5), per_class=20)


def benchmark(name, exp, data_dir, main_py, extra_env, interval=None, cpus=None):
    interval = interval or INTERVALS[exp.datasource]
    with tempfile.TemporaryDirectory() as logdir:
        args = [sys.executable, main_py, *exp.train_flags, *exp.iteration_flags(3 * interval),
                f'--print_interval={interval}', f'--save_interval={10 * interval}', '--log=False',
                f'--data_dir={data_dir}', f'--logdir={logdir}', OMNIGLOT_SPLIT]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', **extra_env)
        # one pipe for both streams (reading two in turn can deadlock); wait4 gives the
        # child's own peak memory
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=os.path.dirname(main_py), preexec_fn=pin)
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
    parser.add_argument('configs', nargs='*', help='"all" or some of: ' + ', '.join(names))
    parser.add_argument('--startup', choices=['omniglot', 'miniimagenet'],
                        help="time loading this datasource's training splits from --data_dir")
    parser.add_argument('--data_dir', default=os.path.join(ROOT, 'data'),
                        help='with --startup: the folder holding the prepared data')
    parser.add_argument('--repeat', type=int, default=3, help='with --startup: turns per checkout')
    parser.add_argument('--compare', help='another checkout of this project: time its main.py too')
    parser.add_argument('--env', metavar='NAME=VALUE',
                        help='time this main.py also with that environment variable set')
    parser.add_argument('--iterations', type=int, metavar='N',
                        help='iterations per progress line (default: '
                             + ', '.join(f'{k} {v}' for k, v in INTERVALS.items())
                             + '); fewer time faster and less exactly')
    parser.add_argument('--cpus', action='append', type=cpu_set, metavar='LIST',
                        help='run every variant on these cores only, e.g. 0 or 0,1 (repeatable: '
                             'each set a column of its own)')
    args = parser.parse_args()
    if not args.configs and not args.startup:
        parser.error('name configurations to time, or give --startup DATASOURCE')
    args.configs = names if args.configs == ['all'] else args.configs
    unknown = sorted(set(args.configs) - set(names))
    if unknown:
        parser.error(f'unknown configuration {", ".join(unknown)}; choose from {", ".join(names)}')
    if args.compare and not os.path.isfile(os.path.join(args.compare, 'main.py')):
        parser.error(f'--compare {args.compare}: no main.py there (give a checkout of this '
                     f'project)')
    if args.env and '=' not in args.env:
        parser.error(f'--env {args.env}: give NAME=VALUE')
    if args.iterations is not None and args.iterations < 1:
        parser.error('--iterations must be at least 1')
    return args


def cpu_set(text):
    """--cpus LIST: a set of core numbers this machine lets the process use."""
    try:
        cpus = {int(c) for c in text.split(',')}
    except ValueError:
        raise argparse.ArgumentTypeError(f'takes core numbers such as 0,1 (got {text!r})') from None
    allowed = os.sched_getaffinity(0)
    if not cpus or not cpus <= allowed:
        raise argparse.ArgumentTypeError(f'{text}: this process may use cores '
                                         f'{",".join(map(str, sorted(allowed)))}')
    return cpus


def variants(args):
    """label -> (main.py, extra environment, cores or None); the one to compare with comes
    first, and 'this' on all cores (or the last --cpus) last."""
    this = os.path.join(ROOT, 'main.py')
    chosen = {}
    for cpus in args.cpus or [None]:
        where = f' cpus {",".join(map(str, sorted(cpus)))}' if cpus else ''
        if args.compare:
            chosen['other' + where] = (os.path.join(os.path.abspath(args.compare), 'main.py'),
                                       {}, cpus)
        if args.env:
            name, value = args.env.split('=', 1)
            chosen[args.env + where] = (this, {name: value}, cpus)
        chosen['this' + where] = (this, {}, cpus)
    return chosen


# what --startup runs in each checkout: load and check the training splits
STARTUP = '; '.join([
    'import sys, time', 'sys.path.insert(0, sys.argv[1])', 'import data_generator',
    'start = time.perf_counter()',
    "data_generator.make_tasks(sys.argv[2], sys.argv[3], ['train', 'val'], 5)",
    'print(time.perf_counter() - start)'])


def startup_seconds(checkout, datasource, data_dir):
    """Seconds `checkout` takes to load and check a datasource's training splits."""
    proc = subprocess.run([sys.executable, '-c', STARTUP, checkout, datasource, data_dir],
                          capture_output=True, text=True, cwd=checkout)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ['no message'])[-1]
        raise SystemExit(f'error: loading failed in {checkout}: {last}')
    return float(proc.stdout.split()[-1])


def time_startup(args):
    checkouts = {'this': ROOT}
    if args.compare:
        checkouts = {'other': os.path.abspath(args.compare), **checkouts}
    times = {label: [] for label in checkouts}
    for _ in range(args.repeat):           # in turns, so a change of machine load hits both
        for label, checkout in checkouts.items():
            times[label].append(startup_seconds(checkout, args.startup, args.data_dir))
    print(f'| {args.startup} start-up | ' + ' | '.join(f'{k} s' for k in times) + ' |')
    for turn in range(args.repeat):
        print(f'| turn {turn + 1} | ' + ' | '.join(f'{v[turn]:.2f}' for v in times.values())
              + ' |')
    print('| median | ' + ' | '.join(f'{sorted(v)[len(v) // 2]:.2f}' for v in times.values())
          + ' |')


def main():
    args = parse_args()
    if args.startup:
        time_startup(args)
        return
    runs = variants(args)
    header = ' | '.join(f'{k} s/it | {k} peak MB' for k in runs)
    ratio_header = ' | '.join(f'{k} / {list(runs)[-1]}' for k in list(runs)[:-1])
    ratio = f' {ratio_header} |' if ratio_header else ''
    print(f'| configuration | {header} |{ratio}', flush=True)
    chosen = configurations()
    with tempfile.TemporaryDirectory() as data_dir:
        make_data(data_dir, {chosen[name].datasource for name in args.configs})
        for name in args.configs:
            results = [benchmark(name, chosen[name], data_dir, path, env, args.iterations, cpus)
                       for path, env, cpus in runs.values()]
            cells = ' | '.join(f'{s:.3f} | {m:.0f}' for s, m in results)
            ratios = ''.join(f' {s / results[-1][0]:.2f}x |' for s, _ in results[:-1])
            print(f'| {name} | {cells} |{ratios}', flush=True)


if __name__ == '__main__':
    main()
