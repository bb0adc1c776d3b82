"""data/prepare_folder.py with data as users have it: it never replaces what another
script made, starts over after being killed, keeps splits when data is added, and
names every input it would otherwise ignore or misread."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from data import prepared, synthetic
from tests.helpers import (
    PER_CLASS,
    ROOT,
    SOURCE_CLASSES,
    classes_of,
    one_error_line,
    prepare_folder,
    run_script,
)


def split_of(dest):
    """{class: split} of a prepared folder."""
    return {c: s for s in ('train', 'val', 'test') if os.path.isdir(os.path.join(dest, s))
            for c in os.listdir(os.path.join(dest, s))}


def tree(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for top, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(top, f), 'rb') as h:
                found[os.path.relpath(os.path.join(top, f), folder)] = h.read()
    return found


@pytest.fixture
def source(tmp_path):
    return synthetic.class_folders(str(tmp_path / 'src'), classes=12, per_class=3)


# ------------------------------------------------------------------ nothing overwritten
def test_a_folder_another_preparation_script_made_is_never_replaced(tmp_path, source):
    os.makedirs(tmp_path / 'zips')
    zips = synthetic.omniglot_zips(str(tmp_path / 'zips'))
    omniglot = tmp_path / 'omniglot_resized'
    proc = run_script('data/prepare_omniglot.py', '--source', zips, '--dest', str(omniglot),
                      '--expect_characters=9', '--expect_images=36')
    assert proc.returncode == 0, proc.stderr
    before = tree(omniglot)
    line = one_error_line(prepare_folder(source, omniglot, '--image_size=28'), 1)
    assert f'{omniglot} was made by data/prepare_omniglot.py, not by data/prepare_folder.py' \
        in line and 'Nothing was changed' in line
    assert tree(omniglot) == before
    # and the other way round
    mine = tmp_path / 'mine'
    assert prepare_folder(source, mine, '--image_size=28').returncode == 0
    before = tree(mine)
    proc = run_script('data/prepare_omniglot.py', '--source', zips, '--dest', str(mine),
                      '--expect_characters=9', '--expect_images=36')
    assert 'was made by data/prepare_folder.py, not by data/prepare_omniglot.py' in \
        one_error_line(proc, 1)
    assert tree(mine) == before


def test_a_preparation_killed_midway_is_recognised_and_started_over(tmp_path):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=30, per_class=40)
    dest = tmp_path / 'prep'
    proc = subprocess.Popen([sys.executable, 'data/prepare_folder.py', '--source', source,
                             '--dest', str(dest), '--image_size=64'], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / 'prep.partial'
    deadline = time.time() + 120
    while time.time() < deadline and not any(f.suffix == '.png' for f in partial.rglob('*')):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.is_dir() and len(prepared.visible_files(str(partial))) > 0
    again = prepare_folder(source, dest, '--image_size=64')
    assert again.returncode == 0, again.stderr
    assert 'unfinished work of an earlier run' in again.stdout
    assert not partial.exists() and prepared.matches(str(dest))


# ------------------------------------------------------------------ splits kept
def test_adding_classes_and_images_keeps_every_class_in_its_split(tmp_path):
    source = tmp_path / 'src'
    synthetic.class_folders(str(source), classes=30, per_class=3)
    dest = tmp_path / 'prep'
    assert prepare_folder(source, dest, '--image_size=20').returncode == 0
    before = split_of(dest)
    more = synthetic.class_folders(str(tmp_path / 'more'), classes=34, per_class=3, seed=1)
    for c in range(30, 34):                              # four new classes
        shutil.copytree(os.path.join(more, f'class_{c:02d}'), source / f'class_{c:02d}')
    shutil.copy(source / 'class_03' / 'img000.png', source / 'class_03' / 'extra.png')
    proc = prepare_folder(source, dest, '--image_size=20')
    assert proc.returncode == 0, proc.stderr
    after = split_of(dest)
    assert {c: after[c] for c in before} == before
    assert len(after) == 34 and '30 classes kept their split; 4 new ones' in proc.stdout
    counts = [sum(s == split for s in after.values()) for split in ('train', 'val', 'test')]
    assert counts == [22, 5, 7]         # each new class where the share is furthest below
    assert 'extra.png' in os.listdir(dest / after['class_03'] / 'class_03')
    # another seed asks for a new split, and says so
    proc = prepare_folder(source, dest, '--image_size=20', '--seed=3')
    assert proc.returncode == 0 and 'split anew' in proc.stdout


# ------------------------------------------------------------------ refused, in one line
@pytest.mark.parametrize('split', ['nan,1,1', 'inf,1,1', '1e308,1e308,1', '1,-1,1', '0,0,0',
                                   '1,2'])
def test_a_split_that_is_not_three_finite_proportions_is_refused(tmp_path, source, split):
    line = one_error_line(prepare_folder(source, tmp_path / 'p', f'--split={split}'), 2)
    assert 'three finite proportions' in line
    assert not (tmp_path / 'p').exists()


def test_a_split_with_no_train_share_is_refused(tmp_path, source):
    line = one_error_line(prepare_folder(source, tmp_path / 'p', '--split=0,50,50'), 2)
    assert 'gives the train split no classes' in line and 'SRC/test/' in line


def test_a_split_given_with_a_source_already_split_is_refused(tmp_path, source):
    shutil.move(source, tmp_path / 'train')
    os.makedirs(tmp_path / 'split')
    shutil.move(tmp_path / 'train', tmp_path / 'split' / 'train')
    line = one_error_line(prepare_folder(tmp_path / 'split', tmp_path / 'p', '--split=1,1,1'), 1)
    assert 'already split into train/' in line and 'leave it out' in line
    assert prepare_folder(tmp_path / 'split', tmp_path / 'p', '--image_size=20').returncode == 0


@pytest.mark.parametrize('where', ['class', 'source', 'split'])
def test_input_that_would_be_ignored_is_named(tmp_path, source, where):
    if where == 'class':
        os.makedirs(os.path.join(source, 'class_02', 'more'))
        shutil.copy(os.path.join(source, 'class_02', 'img000.png'),
                    os.path.join(source, 'class_02', 'more', 'x.png'))
        message = 'class_02 holds sub-folders (more)'
    elif where == 'source':
        shutil.copy(os.path.join(source, 'class_02', 'img000.png'),
                    os.path.join(source, 'stray.png'))
        message = 'holds files beside its class folders (stray.png)'
    else:
        os.makedirs(tmp_path / 'split')
        shutil.move(source, tmp_path / 'split' / 'train')
        shutil.copy(tmp_path / 'split' / 'train' / 'class_02' / 'img000.png',
                    tmp_path / 'split' / 'train' / 'loose.png')
        source = tmp_path / 'split'
        message = 'holds files beside its class folders (loose.png)'
    line = one_error_line(prepare_folder(source, tmp_path / 'p'), 1)
    assert message in line
    assert not (tmp_path / 'p').exists()


def test_two_images_written_under_one_name_are_named_before_any_work(tmp_path, source):
    """img000.png (30x30, copied as it is at --image_size=30) and img000, an image without
    a suffix (converted to PNG under its whole name), would both become img000.png."""
    folder = os.path.join(source, 'class_05')
    Image.new('RGB', (40, 40), (10, 200, 10)).save(os.path.join(folder, 'img000'), format='PNG')
    line = one_error_line(prepare_folder(source, tmp_path / 'p', '--image_size=30'), 1)
    assert f'{folder}/img000 and {folder}/img000.png would both be written as img000.png' in line
    assert not (tmp_path / 'p').exists() and not (tmp_path / 'p.partial').exists()


def test_an_image_given_as_source_is_answered_with_the_folder_of_classes(tmp_path, source):
    image = os.path.join(source, 'class_01', 'img000.png')
    line = one_error_line(prepare_folder(image, tmp_path / 'p'), 2)
    assert 'the folder whose sub-folders are the classes' in line
    assert f'that is {source}' in line


def test_an_unwritable_dest_is_named_without_talk_of_a_lock(source):
    """A --dest in a folder the user may not write (as root, whom no permission stops,
    the script runs as the user nobody)."""
    top = tempfile.mkdtemp(prefix='unwritable')
    try:
        os.chmod(top, 0o755)
        shutil.copytree(source, os.path.join(top, 'src'))
        parent = os.path.join(top, 'readonly')
        os.makedirs(parent, mode=0o555)
        os.chmod(parent, 0o555)
        args = [sys.executable, 'data/prepare_folder.py', '--source', os.path.join(top, 'src'),
                '--dest', os.path.join(parent, 'prep')]
        if os.geteuid() == 0:
            if not shutil.which('setpriv'):
                pytest.skip('running as root, and no setpriv to run the script as another user')
            args = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] + args
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
        line = one_error_line(proc, 1)
        assert 'Permission denied' in line and 'choose another --dest' in line
        assert 'lock' not in line and os.listdir(parent) == []
    finally:
        shutil.rmtree(top)


# ------------------------------------------------------------------ what comes out
def test_real_world_images_come_out_as_they_look(tmp_path):
    """16-bit scans, transparent drawings and turned phone photos, prepared: none comes
    out solid, and each looks as its source does."""
    source = tmp_path / 'src'
    for name in ('scans', 'drawings', 'photos', 'blank'):
        os.makedirs(source / name)
    ramp = np.tile(np.linspace(0, 65535, 32), (32, 1)).astype(np.uint16)
    for i in range(2):
        Image.fromarray(ramp).save(source / 'scans' / f's{i}.png')
        stroke = np.zeros((32, 32, 4), np.uint8)
        stroke[8:24, 14:18, 3] = 255
        Image.fromarray(stroke, 'RGBA').save(source / 'drawings' / f'd{i}.png')
        photo = Image.new('RGB', (64, 32), (250, 250, 250))
        photo.paste((0, 0, 0), (0, 0, 32, 32))             # stored: left half dark
        exif = photo.getexif()
        exif[0x0112] = 6                                   # shown: top half dark
        photo.save(source / 'photos' / f'p{i}.jpg', exif=exif, quality=95)
        Image.new('L', (32, 32), 255).save(source / 'blank' / f'b{i}.png')
    os.makedirs(tmp_path / 'split')
    shutil.move(source, tmp_path / 'split' / 'train')
    proc = prepare_folder(tmp_path / 'split', tmp_path / 'prep', '--image_size=32')
    assert proc.returncode == 0, proc.stderr

    def read(cls, name):
        return np.asarray(Image.open(tmp_path / 'prep' / 'train' / cls / name).convert('L'))
    scan = read('scans', 's0.png')
    assert scan[:, 0].max() < 10 and scan[:, -1].min() > 245
    drawing = read('drawings', 'd0.png')
    assert drawing[0, 0] == 255 and drawing[16, 16] == 0
    photo = read('photos', 'p0.png')                         # re-written, turned
    assert photo[:12].mean() < 60 and photo[-12:].mean() > 200
    assert 'Warning: every image of class blank (train) came out one solid value (255)' \
        in proc.stdout
    assert 'class scans' not in proc.stdout and 'class drawings' not in proc.stdout


def test_hidden_members_of_zips_are_skipped(tmp_path):
    os.makedirs(tmp_path / 'zips')
    zips = synthetic.omniglot_zips(str(tmp_path / 'zips'))
    for name in ('images_background.zip', 'images_evaluation.zip'):
        with zipfile.ZipFile(os.path.join(zips, name), 'a') as archive:
            top = name[:-len('.zip')]
            first = sorted(m for m in archive.namelist() if m.endswith('.png'))[0]
            alphabet, character = first.split('/')[1:3]
            archive.writestr(f'{top}/{alphabet}/{character}/._0001_01.png', b'\x00\x05\x16\x07')
            archive.writestr(f'__MACOSX/{top}/{alphabet}/{character}/._x.png', b'\x00')
            archive.writestr(f'{top}/.hidden/{character}/x.png', b'\x00')
    proc = run_script('data/prepare_omniglot.py', '--source', zips, '--dest',
                      str(tmp_path / 'out'), '--expect_characters=9', '--expect_images=36')
    assert proc.returncode == 0, proc.stderr


def test_class_folders_are_split_64_16_20_by_a_seeded_shuffle(own, tmp_path):
    split = classes_of(own / 'prep')
    assert [len(split[s]) for s in ('train', 'val', 'test')] == [19, 5, 6]
    assert sorted(sum(split.values(), [])) == [f'class_{c:02d}' for c in range(SOURCE_CLASSES)]
    assert split['train'] != [f'class_{c:02d}' for c in range(19)]      # shuffled
    same = prepare_folder(own / 'src', tmp_path / 'again', '--image_size=28')
    other = prepare_folder(own / 'src', tmp_path / 'seed1', '--image_size=28', '--seed=1')
    custom = prepare_folder(own / 'src', tmp_path / 'custom', '--image_size=28', '--split=1,1,1')
    assert same.returncode == other.returncode == custom.returncode == 0
    assert classes_of(tmp_path / 'again') == split
    assert classes_of(tmp_path / 'seed1') != split
    assert [len(v) for v in classes_of(tmp_path / 'custom').values()] == [10, 10, 10]


def test_images_are_resized_kept_colour_counted_and_recorded(own):
    dest = own / 'prep'
    assert prepared.read_info(str(dest)) == {'image_size': 28, 'channels': 3, 'seed': 0,
                                             'split': [64, 16, 20],
                                             'script': 'data/prepare_folder.py'}
    assert not prepared.differences(str(dest), checksums=True)
    for split, classes in classes_of(dest).items():
        for name in classes:
            files = os.listdir(dest / split / name)
            source_files = [f for f in os.listdir(own / 'src' / name) if not f.startswith('.')]
            assert len(files) == len(source_files) == PER_CLASS + int(name[-2:]) % 3
            assert not any(f.startswith('.') for f in files)        # .DS_Store left out
            for f in files[:3]:
                with Image.open(dest / split / name / f) as image:
                    assert image.size == (28, 28) and image.mode == 'RGB'


def test_grayscale_stays_one_channel_and_right_sized_images_are_copied(tmp_path):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=5, per_class=3, colour=False)
    for name in ('train', 'test'):
        shutil.copytree(source, tmp_path / 'split' / name)
    exact = tmp_path / 'split' / 'test' / 'class_00' / 'img000.png'      # 30x30 grayscale
    proc = prepare_folder(tmp_path / 'split', tmp_path / 'prep', '--image_size=30')
    assert proc.returncode == 0, proc.stderr
    assert prepared.read_info(str(tmp_path / 'prep'))['channels'] == 1
    assert set(classes_of(tmp_path / 'prep')) == {'train', 'test'}      # the source's splits
    with open(exact, 'rb') as a, open(tmp_path / 'prep/test/class_00/img000.png', 'rb') as b:
        assert a.read() == b.read()
    with Image.open(tmp_path / 'prep/test/class_00/img001.png') as image:   # was a 36x42 JPEG
        assert image.size == (30, 30) and image.mode == 'L'


def test_a_corrupt_image_is_named_and_nothing_is_written(own, tmp_path):
    source = tmp_path / 'src'
    shutil.copytree(own / 'src', source)
    bad = source / 'class_07' / 'img003.png'
    bad.write_bytes(b'\x89PNG not really')
    line = one_error_line(prepare_folder(source, tmp_path / 'prep'))
    assert str(bad) in line and 'not a readable image' in line
    assert not os.path.exists(tmp_path / 'prep') and not os.path.exists(tmp_path / 'prep.partial')


@pytest.mark.parametrize('layout, message', [
    ('mixed', 'mixes split folders (train) with other folders'),
    ('empty_class', 'holds no images'),
    ('too_few', 'too few to split'),
])
def test_a_source_of_another_shape_is_named(tmp_path, layout, message):
    source = synthetic.class_folders(str(tmp_path / 'src'), classes=4, per_class=3)
    if layout == 'mixed':
        os.makedirs(tmp_path / 'src' / 'train' / 'x')
    elif layout == 'empty_class':
        os.makedirs(tmp_path / 'src' / 'class_99')
    line = one_error_line(prepare_folder(source, tmp_path / 'prep'))
    assert message in line
    assert not os.path.exists(tmp_path / 'prep')


def test_a_dest_overlapping_the_source_or_a_class_folder_as_source_is_refused(tmp_path):
    source = tmp_path / 'src'
    synthetic.class_folders(str(source), classes=4, per_class=3)
    before = sorted(p for p in source.rglob('*'))
    cases = [(source, source, 'is --source; choose another --dest'),
             (source, source / 'out', 'lies inside --source=.*taken for a class folder'),
             (source / 'class_00', tmp_path, 'lies inside --dest=.*which the output replaces'),
             (source / 'class_00', tmp_path / 'p', 'holds files but no class folders; give the '
                                                  'folder whose sub-folders are the classes')]
    for src, dest, message in cases:
        assert re.search(message, one_error_line(prepare_folder(src, dest)))
    assert sorted(p for p in source.rglob('*')) == before and not (tmp_path / 'p').exists()


def test_rerunning_never_deletes_a_file_the_user_added(own, tmp_path):
    dest = tmp_path / 'prep'
    assert prepare_folder(own / 'src', dest, '--image_size=20').returncode == 0
    mine = dest / 'train' / 'notes.txt'
    mine.write_text('mine')
    line = one_error_line(prepare_folder(own / 'src', dest, '--image_size=20'))
    assert 'train/notes.txt' in line and 'Nothing was changed' in line
    assert mine.read_text() == 'mine'
    mine.unlink()
    assert prepare_folder(own / 'src', dest, '--image_size=24').returncode == 0
    assert prepared.read_info(str(dest))['image_size'] == 24

