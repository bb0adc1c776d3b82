"""One experiment's steps, as the reproduction runs them: main.py trains it (or resumes
it, or says it is done), then evaluates each K the paper reports that is not yet
evaluated for the newest checkpoint. Shared by every kind of job (scripts/jobs.py).
"""
import contextlib
import datetime
import os
import signal
import subprocess
import sys
import threading
import time

import results
import run_folder
from scripts import experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_TASKS = 5
RUNNING = []    # the step running now, so that a job stopped by its scheduler can stop it
STOPPED = threading.Event()   # set on Ctrl-C: no step starts any more


def run(cmd, log=None, env=None):
    """Run a step, its output to `log` (an open file) or the terminal; its exit code
    (130 without starting it once stop_all was called). It is polled rather than waited
    for, so that a signal handler (Ctrl-C, or a scheduler's warning) can stop it
    meanwhile and wait for it to save."""
    if STOPPED.is_set():
        return 130
    print('  $ ' + ' '.join(cmd), file=log or sys.stdout, flush=True)
    env = dict(env or os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    with subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None,
                          cwd=ROOT) as proc:
        RUNNING.append(proc)
        try:
            while proc.poll() is None:
                time.sleep(0.2)
        except KeyboardInterrupt:     # the step got the Ctrl-C too: let it save and exit
            proc.wait()
            raise
        finally:
            RUNNING.remove(proc)
        return proc.returncode


def stop_all():
    """After Ctrl-C: start no further step, and ask the running ones to save and stop (a
    terminal sends them the Ctrl-C too, a `kill -INT` of this process alone does not).
    SIGTERM, not a second SIGINT: main.py takes a second Ctrl-C as 'stop without saving',
    and a SIGTERM after the first as nothing new."""
    STOPPED.set()
    for proc in list(RUNNING):
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)


def main_command(exp, args):
    """The main.py command line that trains `exp` (plus --train=False ... to evaluate it)."""
    iterations = args.smoke_iterations if args.smoke else exp.iterations
    smoke = [f'--num_test_tasks={SMOKE_TASKS}', '--omniglot_split=20,20', '--print_interval=5',
             f'--save_interval={max(5, iterations // 20)}'] if args.smoke else []
    return [sys.executable, os.path.join(ROOT, 'main.py'), *exp.train_flags,
            *exp.iteration_flags(iterations), f'--logdir={os.path.join(args.logdir, exp.name)}',
            f'--data_dir={args.data_dir}', *smoke]


def evaluations_due(exp, args):
    """(K, random_init) of each evaluation not yet written for what it evaluates: the
    experiment's newest checkpoint, or its random initialisation. Read from the results'
    contents (the checkpoint each names), not their times: a fresh clone gives every
    file the same time."""
    found = run_folder.checkpoints_in(experiments.experiment_folder(args.logdir, exp))
    newest = os.path.basename(found[0][1]) if found else None
    seed = experiments.run_config(exp).seed
    due = []
    for k, random_init in experiments.evaluations(exp):
        csv_path = experiments.eval_csv(args.logdir, exp, k, SMOKE_TASKS if args.smoke else 600,
                                        random_init)
        wanted = results.random_init_label(seed) if random_init else newest
        if not results.result_of(csv_path, wanted):
            due.append((k, random_init))
    return due


def finished(exp, args):
    """Whether the experiment is trained to its last iteration and fully evaluated."""
    found = run_folder.checkpoints_in(experiments.experiment_folder(args.logdir, exp))
    iterations = args.smoke_iterations if args.smoke else exp.iterations
    return bool(found) and found[0][0] >= iterations and not evaluations_due(exp, args)


def evaluation_flags(exp, k, random_init):
    train_k = experiments.run_config(exp).update_batch_size
    flags = ['--train=False', '--test_set=True', f'--update_batch_size={k}',
             f'--train_update_batch_size={train_k}']
    return flags + (['--random_init=True'] if random_init else [])


def train_and_evaluate(exp, args, log=None, env=None):
    """One experiment: train (or resume, or nothing when done), then the evaluations due.
    Returns main.py's exit code of the first step that failed, or 0."""
    common = main_command(exp, args)
    code = run(common, log, env)
    if code != 0:
        return code
    due = evaluations_due(exp, args)
    for k, random_init in experiments.evaluations(exp):
        what = f'evaluation K={k}' + (' of the random initialisation' if random_init else '')
        if (k, random_init) not in due:
            print(f'  {what} is up to date', file=log or sys.stdout, flush=True)
            continue
        code = run(common + evaluation_flags(exp, k, random_init), log, env)
        if code != 0:
            return code
    return 0


def report(job_id, name, state, detail=''):
    stamp = datetime.datetime.now().strftime('%H:%M:%S')
    print(f'{stamp} job {job_id} {name}: {state}' + (f' ({detail})' if detail else ''),
          flush=True)


def unfinished(chosen, args):
    """The experiments not yet trained and evaluated; the others are reported done."""
    todo = []
    for exp in chosen:
        if finished(exp, args):
            report('-', exp.name, 'done', 'finished earlier')
        else:
            todo.append(exp)
    return todo
