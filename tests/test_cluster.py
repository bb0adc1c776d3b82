"""The reproduction as jobs: several at once on this machine, and on a real one-node SLURM
cluster (`bash scripts/slurm_cluster.sh up`, which CI runs) through submitit; jobs
requeued, preempted or killed resume from their checkpoint and end with the weights of
an uninterrupted run."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT, checkpoint_values, with_ctrl_c

SINE_DIR = 'cls_5.mbs_25.ubs_10.numstep1.updatelr0.01nonorm'


def reproduce(logdir, *args, wait=True):
    cmd = [sys.executable, '-m', 'scripts.reproduce', '--smoke', '--logdir', str(logdir), *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, preexec_fn=with_ctrl_c)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def slurm_reason():
    """Why the SLURM tests cannot run here, or None."""
    if not shutil.which('sbatch'):
        return 'no SLURM here: run `bash scripts/slurm_cluster.sh up` as root to start one'
    state = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True)
    if state.returncode != 0 or not re.search(r'idle|mixed|alloc', state.stdout):
        return f'SLURM has no usable node ({state.stdout.strip() or state.stderr.strip()}); ' \
               f'run `bash scripts/slurm_cluster.sh up` as root'
    try:
        import submitit  # noqa: F401
    except ImportError:
        return 'submitit is not installed: pip install -r requirements-cluster.txt'
    return None


def needs_slurm(test):
    """An `extras` test (CI runs it once the cluster extra and SLURM are up), skipped,
    saying why, without them."""
    reason = slurm_reason()
    return pytest.mark.extras(pytest.mark.skipif(reason is not None, reason=str(reason))(test))
SLURM = ['--cluster', 'slurm', '--gpus_per_job', '0']


@pytest.mark.slow
def test_two_local_jobs_run_at_once(tmp_path):
    proc = reproduce(tmp_path, '--only', 'sine_maml,sine_oracle', '--seeds', '1', '--jobs', '2')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = re.findall(r'job (\d) (\w+): (\w+)', proc.stdout)
    first_done = next(i for i, s in enumerate(states) if s[2] == 'done')
    assert {s[1] for s in states[:first_done] if s[2] == 'running'} == {'sine_maml', 'sine_oracle'}
    for name in ('sine_maml', 'sine_oracle'):
        assert 'Finished: 10 iterations' in (tmp_path / name / 'job.log').read_text()


@pytest.mark.slow
@needs_slurm
def test_smoke_reproduction_through_slurm_fills_the_table(tmp_path):
    proc = reproduce(tmp_path, '--only', 'sine_maml,omniglot5way', '--seeds', '1', *SLURM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ('sine_maml', 'omniglot5way'):
        job = re.search(rf'job (\d+) {name}: queued', proc.stdout).group(1)
        assert re.search(rf'job {job} {name}: running', proc.stdout)
        assert re.search(rf'job {job} {name}: done \(log: .*/slurm/{job}/{job}_0_log.out\)',
                         proc.stdout)
    table = (tmp_path / 'results.md').read_text()
    assert re.search(r'\| Omniglot 5-way 1-shot \| 98.70 \+- 0.40 \| \d+\.\d\d \+- ', table)
    assert '(sd over 1 seeds)' in table and 'not yet run' in table   # others never run
    again = reproduce(tmp_path, '--only', 'sine_maml,omniglot5way', '--seeds', '1', *SLURM)
    assert again.returncode == 0 and again.stdout.count('done (finished earlier)') == 2


def wait_for(condition, what, timeout=300):
    start = time.time()
    while not condition():
        assert time.time() - start < timeout, f'timed out waiting for {what}'
        time.sleep(0.5)


def saved_iterations(logdir):
    return [int(re.search(r'model(\d+)', p).group(1))
            for p in glob.glob(os.path.join(logdir, 'sine_maml', SINE_DIR, 'model*.index'))]


def job_id(logdir):
    with open(os.path.join(logdir, 'sine_maml', 'slurm_job.json')) as f:
        return json.load(f)['job_id']


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


ITERATIONS = 2000
LONG = ['--only', 'sine_maml', '--seeds', '1', '--smoke_iterations', str(ITERATIONS), *SLURM]


@pytest.fixture(scope='module')
def uninterrupted_weights(tmp_path_factory):
    """The weights of the LONG run trained on this machine without interruption."""
    straight = tmp_path_factory.mktemp('straight')
    proc = reproduce(straight, '--only', 'sine_maml', '--seeds', '1',
                     '--smoke_iterations', str(ITERATIONS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return checkpoint_values(str(straight / 'sine_maml' / SINE_DIR / f'model{ITERATIONS}'))


@pytest.mark.slow
@needs_slurm
@pytest.mark.parametrize('how', ['scontrol_requeue', 'preemption_signal'])
def test_a_requeued_or_preempted_job_resumes_from_its_checkpoint(tmp_path, how,
                                                                 uninterrupted_weights):
    logdir = tmp_path / 'cluster'
    proc = reproduce(logdir, *LONG, wait=False)
    wait_for(lambda: saved_iterations(logdir), 'the first checkpoint')
    job = job_id(logdir)
    if how == 'scontrol_requeue':
        subprocess.run(['scontrol', 'requeue', job], check=True)
    else:       # what SLURM sends before a preemption (submitit's own test does the same)
        subprocess.run(['scancel', job, '--signal', 'USR2'], check=True)
    seen = []
    for line in proc.stdout:     # SLURM holds a requeued job for 2 minutes: release it
        seen.append(line)
        if f'job {job} sine_maml: requeued' in line:
            # slurmd refuses a relaunch within the second its credential was revoked
            # ("Job credential revoked": the job ends FAILED), part of why the hold exists
            time.sleep(2)
            subprocess.run(['scontrol', 'update', f'JobId={job}', 'StartTime=now'], check=True)
            break
    out = ''.join(seen) + proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert f'job {job} sine_maml: requeued' in out
    log = open(glob.glob(str(logdir / 'slurm' / job / f'{job}_0_log.out'))[0]).read()
    resumed = re.findall(r'iterations (\d+)\.\.2000', log)
    saved = re.search(r'Saved after iteration (\d+)', log).group(1)
    assert resumed == ['1', str(int(saved) + 1)], log      # nothing lost
    final = checkpoint_values(str(logdir / 'sine_maml' / SINE_DIR / f'model{ITERATIONS}'))
    assert_same_weights(final, uninterrupted_weights)


@pytest.mark.slow
@needs_slurm
def test_a_killed_job_fails_and_the_same_command_resumes_it(tmp_path, uninterrupted_weights):
    logdir = tmp_path / 'cluster'
    proc = reproduce(logdir, *LONG, wait=False)
    wait_for(lambda: saved_iterations(logdir), 'the first checkpoint')
    subprocess.run(['pkill', '-9', '-f', f'main.py .*--logdir={logdir}/sine_maml'], check=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    assert re.search(r'job \d+ sine_maml: failed', out)
    assert re.search(r'failed: sine_maml \(log: .*_0_log.out\)', out)
    again = reproduce(logdir, *LONG)
    assert again.returncode == 0, again.stdout + again.stderr
    job = job_id(logdir)
    log = open(glob.glob(str(logdir / 'slurm' / job / f'{job}_0_log.out'))[0]).read()
    assert int(re.search(r'iterations (\d+)\.\.2000', log).group(1)) > 1, log
    final = checkpoint_values(str(logdir / 'sine_maml' / SINE_DIR / f'model{ITERATIONS}'))
    assert_same_weights(final, uninterrupted_weights)


@pytest.mark.parametrize('previous,state,restarted,reported', [
    (None, 'queued', False, ['queued']),
    ('queued', 'queued', False, []),
    ('queued', 'running', False, ['running']),
    ('running', 'queued', False, ['requeued']),          # seen back in the queue
    ('requeued', 'queued', False, []),
    ('requeued', 'running', False, ['running']),
    ('running', 'running', True, ['requeued', 'running']),  # restarted between two looks
    ('running', 'done', False, ['done']),
    ('queued', 'failed', False, ['failed']),
])
def test_state_changes_reported_for_a_slurm_job(previous, state, restarted, reported):
    from scripts.slurm_jobs import changes
    assert changes(previous, state, restarted) == reported


@pytest.mark.slow
@needs_slurm
def test_interrupting_the_command_leaves_the_jobs_and_the_same_command_follows_them(tmp_path):
    proc = reproduce(tmp_path, *LONG, wait=False)
    for line in proc.stdout:
        if ': running' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert 'the submitted jobs go on; run the same command to follow them' in out
    job = job_id(tmp_path)
    state = subprocess.run(['squeue', '-h', '-j', job, '-o', '%T'], capture_output=True,
                           text=True).stdout.strip()
    assert state in ('RUNNING', 'COMPLETING', 'COMPLETED'), state
    again = reproduce(tmp_path, *LONG)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f'job {job} sine_maml: followed' in again.stdout or \
        'done (finished earlier)' in again.stdout
    assert 'Finished: 2000 iterations' in open(
        glob.glob(str(tmp_path / 'slurm' / job / f'{job}_0_log.out'))[0]).read()


@pytest.mark.slow
@needs_slurm
@pytest.mark.parametrize('args, said', [
    (['--partition', 'nosuch'], 'Invalid partition name specified'),
    (['--gpus_per_job', '3'], 'Invalid generic resource (gres) specification'),
])
def test_a_job_sbatch_refuses_is_one_line_naming_why(tmp_path, args, said):
    proc = reproduce(tmp_path, '--only', 'sine_oracle', *SLURM, *args)   # the last --gpus wins
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: sbatch refused the job of sine_oracle: ')
    assert said in lines[0]
