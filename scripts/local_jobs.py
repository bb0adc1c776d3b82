"""The reproduction's jobs on this machine: up to --jobs experiments at a time, each on
its own GPU when there are any (scripts/jobs.py chooses the runner)."""
import concurrent.futures
import os
import queue
import shutil
import subprocess

from scripts import steps


def visible_gpus():
    """The GPUs the jobs may use: those CUDA_VISIBLE_DEVICES names, else every one
    nvidia-smi lists ([] without any)."""
    if os.environ.get('CUDA_VISIBLE_DEVICES', '').strip():
        return [g.strip() for g in os.environ['CUDA_VISIBLE_DEVICES'].split(',') if g.strip()]
    if not shutil.which('nvidia-smi'):
        return []
    listed = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True)
    return [str(i) for i, line in enumerate(listed.stdout.splitlines()) if line.startswith('GPU')]


class LocalRunner:
    """Up to args.jobs experiments at a time, each job on its own GPU when there are any.
    One at a time, a job's output goes to the terminal; several at a time, to
    LOGDIR/<experiment>/job.log."""

    def __init__(self, args):
        self.args = args

    def run_all(self, chosen):
        """Run the experiments not yet finished; [(name, log)] of those that failed."""
        slots = queue.Queue()
        gpus = visible_gpus()
        for slot in range(self.args.jobs):
            slots.put(gpus[slot % len(gpus)] if gpus else None)
        todo = steps.unfinished(chosen, self.args)
        for i, exp in enumerate(todo, 1):
            steps.report(i, exp.name, 'queued')
        with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
            futures = [pool.submit(self.run_one, i, exp, slots) for i, exp in enumerate(todo, 1)]
            try:
                return [failure for f in futures if (failure := f.result())]
            except KeyboardInterrupt:    # Ctrl-C reaches this (the main) thread only
                steps.stop_all()
                for future in futures:
                    future.cancel()      # the queued experiments never start
                raise

    def run_one(self, job_id, exp, slots):
        gpu = slots.get()
        env = dict(os.environ, **({'CUDA_VISIBLE_DEVICES': gpu} if gpu is not None else {}))
        log_path = os.path.join(self.args.logdir, exp.name, 'job.log')
        try:
            steps.report(job_id, exp.name, 'running', f'GPU {gpu}' if gpu is not None else '')
            if self.args.jobs == 1:
                code = steps.train_and_evaluate(exp, self.args, env=env)
                log_path = 'the output above'
            else:
                os.makedirs(os.path.dirname(log_path), exist_ok=True)
                with open(log_path, 'a') as log:
                    code = steps.train_and_evaluate(exp, self.args, log, env)
        finally:
            slots.put(gpu)
        if code == 130:
            steps.report(job_id, exp.name, 'interrupted')
            return None
        steps.report(job_id, exp.name, 'done' if code == 0 else 'failed', f'log: {log_path}')
        return None if code == 0 else (exp.name, log_path)
