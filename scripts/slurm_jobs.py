"""The reproduction's jobs on SLURM, through submitit (`pip install -r
requirements-cluster.txt`): one job per experiment, followed until all have ended.

A job warned of preemption or of its time limit is stopped as Ctrl-C stops a training
(it saves) and requeued by submitit; it resumes from that checkpoint. A job killed
outright is submitted again by the next run of the same command, which skips the
finished experiments and follows the jobs still queued or running.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from scripts import steps
from utils import UserError

POLL_SECONDS = 5


QUEUED = {'PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING'}


RUNNING = {'RUNNING', 'COMPLETING', 'STAGE_OUT', 'SIGNALING', 'SUSPENDED'}


class ExperimentJob:
    """One experiment as a submitit job. submitit calls checkpoint() when SLURM warns of
    preemption or of the time limit: the running step is stopped as Ctrl-C stops it
    (training saves), and the same job is requeued, to resume from that checkpoint."""

    def __init__(self, exp, args):
        self.exp, self.args = exp, args

    def __call__(self):
        code = steps.train_and_evaluate(self.exp, self.args)
        if code != 0:
            raise RuntimeError(f'{self.exp.name}: a main.py step exited with {code}')
        return self.exp.name

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission
        for proc in list(steps.RUNNING):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=600)
        return DelayedSubmission(ExperimentJob(self.exp, self.args))


class SlurmRunner:
    """Each experiment one SLURM job; follows them with squeue until all have ended."""

    def __init__(self, args):
        self.args = args
        self.folder = os.path.join(args.logdir, 'slurm', '%j')

    def run_all(self, chosen):
        submitit = self.import_submitit()
        jobs, shown = {}, {}
        for exp in steps.unfinished(chosen, self.args):
            job = self.alive_job(submitit, exp)
            if job is None:
                job = self.submit(submitit, exp)
                steps.report(job.job_id, exp.name, 'queued')
                shown[job.job_id] = 'queued'
            jobs[job.job_id] = (exp, job)
        return self.follow(jobs, shown)

    def follow(self, jobs, shown):
        """Report each change of state of `jobs` ({id: (exp, job)}; `shown`: the state last
        reported of each) until all have ended; [(name, log)] of those that failed."""
        failed, restarts = [], {}
        while jobs:
            listed = slurm_jobs()
            for job_id, state in self.states(jobs, listed).items():
                exp, job = jobs[job_id]
                count = listed.get(job_id, ('', 0))[1]
                restarted = count > restarts.setdefault(job_id, count)
                restarts[job_id] = count
                for change in changes(shown.get(job_id), state, restarted):
                    log = f'log: {job.paths.stdout}' if change in ('done', 'failed') else ''
                    steps.report(job_id, exp.name, change, log)
                    shown[job_id] = change
                if state in ('done', 'failed'):
                    del jobs[job_id]
                    if state == 'failed':
                        failed.append((exp.name, str(job.paths.stdout)))
            if jobs:
                time.sleep(POLL_SECONDS)
        return failed

    @staticmethod
    def import_submitit():
        if not shutil.which('sbatch'):
            raise UserError('--cluster=slurm needs SLURM (sbatch not found); run this on a '
                            'cluster login node')
        try:
            import submitit
        except ImportError:
            raise UserError('--cluster=slurm needs submitit: '
                            'pip install -r requirements-cluster.txt') from None
        return submitit

    def executor(self, submitit, exp):
        extra = {'chdir': steps.ROOT}
        extra.update(self.args.sbatch)
        # requeued at each time limit for as long as training takes
        executor = submitit.AutoExecutor(folder=self.folder, cluster='slurm',
                                         slurm_max_num_timeout=1000)
        params = dict(name=exp.name, timeout_min=self.args.time_limit,
                      gpus_per_node=self.args.gpus_per_job, slurm_additional_parameters=extra)
        if self.args.partition:
            params['slurm_partition'] = self.args.partition
        if self.args.cpus_per_job:
            params['cpus_per_task'] = self.args.cpus_per_job
        executor.update_parameters(**params)
        return executor

    def submit(self, submitit, exp):
        with stderr_captured() as captured:
            try:
                job = self.executor(submitit, exp).submit(ExperimentJob(exp, self.args))
                failure = None
            except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as err:
                failure = str(err)
        said = [line.strip() for line in (captured.text() + '\n' + (failure or '')).splitlines()
                if 'error' in line.lower()]
        if failure is not None:
            raise UserError(f'sbatch refused the job of {exp.name}: {(said or [failure])[-1]} '
                            f'(check --partition, --gpus_per_job, --cpus_per_job and --sbatch)')
        sys.stderr.write(captured.text())
        path = self.record_path(exp)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump({'job_id': job.job_id}, f)
        return job

    def record_path(self, exp):
        return os.path.join(self.args.logdir, exp.name, 'slurm_job.json')

    def alive_job(self, submitit, exp):
        """The job an earlier run of this command submitted for `exp`, if still queued or
        running."""
        try:
            with open(self.record_path(exp)) as f:
                job_id = str(json.load(f)['job_id'])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if slurm_jobs().get(job_id, ('',))[0] not in QUEUED | RUNNING:
            return None
        steps.report(job_id, exp.name, 'followed', 'submitted by an earlier run')
        return submitit.SlurmJob(folder=self.folder, job_id=job_id)

    @staticmethod
    def states(jobs, listed):
        """{job id: queued / running / done / failed} of the followed jobs, from `listed`
        (slurm_jobs()) and, for those SLURM no longer queues or runs, their result files."""
        found = {}
        for job_id, (_, job) in jobs.items():
            state = listed.get(job_id, ('',))[0]
            if state in QUEUED:
                found[job_id] = 'queued'
            elif state in RUNNING:
                found[job_id] = 'running'
            else:
                found[job_id] = 'done' if job_succeeded(job) else 'failed'
        return found


class stderr_captured:
    """File descriptor 2 into a temporary file meanwhile, so that what a command such as
    sbatch writes there can become part of a one-line error; .text(), once out of the
    with block, is what was written."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode='w+')
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.captured = self.file.read()
        self.file.close()
        return False

    def text(self):
        return self.captured


def changes(previous, state, restarted):
    """The changes to report for a job last reported as `previous` and now in `state`: a
    job back in the queue after running, or restarted by SLURM, was requeued."""
    found = []
    if restarted or (state == 'queued' and previous == 'running'):
        found.append('requeued')
        previous = 'requeued'
    if state != previous and not (state == 'queued' and previous == 'requeued'):
        found.append(state)
    return found


def slurm_jobs():
    """{job id: (SLURM state, restarts)} of the jobs SLURM still lists. (scontrol, not
    sacct: it needs no accounting database, and it counts requeues.)"""
    listed = subprocess.run(['scontrol', 'show', 'job', '-o'], capture_output=True, text=True)
    if listed.returncode != 0:
        if 'No jobs' in listed.stdout + listed.stderr:
            return {}
        raise UserError(f'scontrol show job failed: {listed.stderr.strip()}')
    jobs = {}
    for line in listed.stdout.splitlines():
        fields = dict(f.split('=', 1) for f in line.split() if '=' in f)
        if 'JobId' in fields:
            jobs[fields['JobId']] = (fields.get('JobState', ''), int(fields.get('Restarts', 0)))
    return jobs


def job_succeeded(job):
    """Whether the job's function returned (submitit's result file says 'success')."""
    from submitit.core.utils import pickle_load
    try:
        outcome, _ = pickle_load(job.paths.result_pickle)
    except Exception:     # no result: killed, or still being written
        return False
    return outcome == 'success'
