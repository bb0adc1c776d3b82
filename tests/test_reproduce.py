"""The reproduction script end to end in smoke mode, and the table it writes."""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

import run_folder
from scripts import experiments, steps
from tests.helpers import ROOT, SINE_MAML_FOLDER, run_script, wait_for_training, with_ctrl_c


@pytest.mark.slow
def test_smoke_reproduction_trains_evaluates_and_tabulates(tmp_path):
    logdir = str(tmp_path / 'smoke')
    cmd = ['bash', os.path.join(ROOT, 'scripts', 'reproduce_all.sh'), '--smoke', '--logdir', logdir,
           '--only', 'sine_maml,omniglot5way', '--seeds', '2']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(logdir, 'results.md')) as f:
        table = f.read()
    rows = {line.split(' | ')[0].lstrip('| '): line for line in table.splitlines()[2:]}
    sine = rows['Sinusoid K=5, MAML, MSE after 1 step'].split(' | ')
    assert '(sd over 2 seeds)' in sine[2]                                 # seeds 0 and 1 trained
    assert os.path.isdir(os.path.join(logdir, 'sine_maml_seed1'))
    assert 'not yet run' not in rows['Omniglot 5-way 5-shot (trained at K=1)']
    omniglot_row = rows['Omniglot 5-way 1-shot'].split(' | ')
    assert omniglot_row[4] == '10' and '(sd over 2 seeds)' in omniglot_row[2]
    assert 'seed 2: not yet evaluated; per seed (0, 1): ' in omniglot_row[7]
    assert 'not yet run' in rows['Omniglot 20-way 1-shot']     # never filled from the paper
    random_init = rows['Omniglot 5-way 1-shot, random init'].split(' | ')     # after 10 steps
    assert random_init[3:5] == ['10', '0 (random init)'] and '%' not in random_init[2]
    assert 'MAML after 10 steps: ' in random_init[7]
    # a second run skips the finished experiments, and of one with a result lost (the
    # 5-shot evaluation of omniglot5way) makes only that again; as after a fresh clone,
    # the files' times say nothing: what each result evaluated decides
    omniglot = next(e for e in experiments.experiments() if e.name == 'omniglot5way')
    os.remove(experiments.eval_csv(logdir, omniglot, 5, steps.SMOKE_TASKS))
    for top, _, files in os.walk(logdir):
        for name in files:
            os.utime(os.path.join(top, name), (1, 1))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert re.findall(r'job - (\w+): done \(finished earlier\)', again.stdout) == [
        'sine_maml', 'sine_maml_seed1', 'omniglot5way_seed1']
    assert again.stdout.count('Nothing to train') == 1
    assert again.stdout.count('evaluation K=1 is up to date') == 1
    assert again.stdout.count('evaluation K=1 of the random initialisation is up to date') == 1
    evaluations = [line for line in again.stdout.splitlines()
                   if line.startswith('  $ ') and '--train=False' in line]
    assert len(evaluations) == 1 and '--update_batch_size=5' in evaluations[0]
    assert os.path.exists(experiments.eval_csv(logdir, omniglot, 5, steps.SMOKE_TASKS))


def test_optional_experiments_run_only_when_named_and_only_tolerates_spaces():
    from scripts import reproduce
    every = reproduce.parse_args([]).selected
    assert 'miniimagenet5shot_fo_mbs4' not in every and 'miniimagenet5shot_fo' in every
    assert len(every) == len(experiments.experiments()) - 1
    named = reproduce.parse_args(['--only', 'miniimagenet5shot_fo_mbs4, sine_oracle,']).selected
    assert named == ['miniimagenet5shot_fo_mbs4', 'sine_oracle']


@pytest.mark.parametrize('argv,message', [
    (['--seeds', '0'], '--seeds must be at least 1 (got 0)'),       # used to train nothing
    (['--seeds', '-1'], '--seeds must be at least 1 (got -1)'),     # used to drop the last seed
    (['--jobs', '0'], '--jobs must be at least 1 (got 0)'),
    (['--omniglot_iterations', '-5'], '--omniglot_iterations must be at least 1 (got -5)'),
    (['--mini5shot_meta_batch_size', '0'], '--mini5shot_meta_batch_size must be at least 1'),
    (['--sine_update_lr', '0'], '--sine_update_lr must be positive (got 0.0)'),
    (['--cluster', 'slurm', '--time_limit', '0'], '--time_limit must be at least 1 (got 0)'),
    (['--cluster', 'slurm', '--gpus_per_job', '-1'], '--gpus_per_job must be at least 0'),
    (['--cluster', 'slurm', '--cpus_per_job', '0'], '--cpus_per_job must be at least 1'),
    # SLURM's options without --cluster slurm used to run everything on this machine
    (['--partition', 'gpu', '--time_limit', '240'],
     '--partition, --time_limit are for SLURM jobs: add --cluster slurm'),
    (['--sbatch', 'account=abc'], '--sbatch is for SLURM jobs: add --cluster slurm'),
    (['--omniglot_source', '/nonexistent'], 'argument --omniglot_source: /nonexistent is not a '),
    (['--miniimagenet_source', os.path.join(ROOT, 'README.md')],
     f'README.md is a file: give the folder holding it, {ROOT}'),
])
def test_numbers_out_of_range_and_slurm_options_without_slurm_are_refused(argv, message, capsys):
    from scripts import reproduce
    with pytest.raises(SystemExit) as exit_info:
        reproduce.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_slurm_options_take_their_defaults_with_slurm():
    from scripts import reproduce
    cpu_only = reproduce.parse_args(['--gpus_per_job', '0', '--cluster', 'slurm'])
    assert (cpu_only.gpus_per_job, cpu_only.time_limit, cpu_only.cpus_per_job) == (0, 1440, None)
    assert reproduce.parse_args(['--cluster', 'slurm']).gpus_per_job == 1
    assert reproduce.parse_args(['--cluster', 'slurm', '--seeds', '1']).sbatch == ()


@pytest.mark.slow
@pytest.mark.parametrize('jobs', [1, 2])
def test_ctrl_c_during_reproduce_stops_it_and_keeps_the_saved_training(tmp_path, jobs):
    """One Ctrl-C: the running experiments save and stop, the queued ones never start."""
    cmd = [sys.executable, '-m', 'scripts.reproduce', '--smoke', '--logdir', str(tmp_path),
           '--only', 'sine_maml', '--seeds', '3', '--smoke_iterations', '50000',
           '--jobs', str(jobs)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=with_ctrl_c)
    before = ''.join(wait_for_training(proc, str(tmp_path), jobs))
    os.killpg(proc.pid, signal.SIGINT)        # Ctrl-C reaches the whole process group
    out = before + proc.communicate(timeout=180)[0]
    assert proc.returncode == 130, out
    assert out.rstrip().endswith('interrupted: finished steps are kept; run the same command '
                                 'to go on')
    assert f'job {jobs + 1} sine_maml_seed{jobs}: running' not in out       # never started
    assert not os.path.exists(os.path.join(str(tmp_path), f'sine_maml_seed{jobs}'))
    for name in ['sine_maml', 'sine_maml_seed1'][:jobs]:
        folder = os.path.join(str(tmp_path), name, SINE_MAML_FOLDER)   # the same for each seed
        log = out if jobs == 1 else open(os.path.join(str(tmp_path), name, 'job.log')).read()
        saved = int(re.search(r'Saved after iteration (\d+)', log).group(1))
        assert run_folder.checkpoints_in(folder)[0][0] == saved < 50000


@pytest.mark.slow
def test_a_fresh_clones_finished_runs_are_not_evaluated_again(tmp_path):
    """A clone gives every file the same time: the shipped sine_oracle run (checkpoint and
    result) is finished by what its result evaluated, so nothing runs or is overwritten."""
    shutil.copytree(os.path.join(ROOT, 'logs', 'sine_oracle'), tmp_path / 'sine_oracle')
    files = sorted(glob.glob(str(tmp_path / 'sine_oracle' / '**' / '*'), recursive=True))
    for path in files:
        os.utime(path, (1000, 1000))
    before = {p: open(p, 'rb').read() for p in files if os.path.isfile(p)}
    proc = run_script('-m scripts.reproduce', '--only', 'sine_oracle', '--logdir', str(tmp_path),
                      '--data_dir', str(tmp_path / 'no_data'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'job - sine_oracle: done (finished earlier)' in proc.stdout
    assert '$ ' not in proc.stdout                          # no main.py step ran
    assert {p: open(p, 'rb').read() for p in before} == before


@pytest.mark.slow
def test_reproduce_all_refuses_to_run_without_its_environment(tmp_path):
    os.makedirs(tmp_path / 'scripts')
    shutil.copy(os.path.join(ROOT, 'scripts', 'reproduce_all.sh'), tmp_path / 'scripts')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    proc = subprocess.run(['bash', str(tmp_path / 'scripts' / 'reproduce_all.sh')], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith('error: no .venv in ')
    assert len(proc.stderr.strip().splitlines()) == 1

