"""The data preparation scripts on tiny synthetic sources, and the reference checkpoint."""
import csv
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

import utils
from data import loading, prepared, synthetic
from data.loading import sorted_dirs
from tests.helpers import ROOT, one_error_line, run_script
from utils import UserError


def listed(source, split, index):
    """(filename, label) of row `index` of a split CSV."""
    with open(os.path.join(source, f'{split}.csv')) as f:
        return list(csv.reader(f))[1 + index]


def prepare(script, *args):
    return run_script(f'data/{script}', *args)


@pytest.mark.slow
@pytest.mark.parametrize('how', ['python data/prepare_omniglot.py',
                                 'python -m data.prepare_omniglot'])
def test_data_scripts_run_as_a_file_and_as_a_module(tmp_path, how):
    source = synthetic.omniglot_zips(str(tmp_path))
    proc = run_script(how.split(' ', 1)[1], '--source', source, '--dest', str(tmp_path / 'out'),
                      '--expect_characters=9', '--expect_images=36')
    assert proc.returncode == 0, proc.stderr
    assert 'Prepared' in proc.stdout


@pytest.mark.slow
def test_prepare_omniglot_resizes_and_is_safe_to_rerun(tmp_path):
    source = synthetic.omniglot_zips(str(tmp_path))
    dest = str(tmp_path / 'omniglot_resized')
    args = ['--source', source, '--dest', dest, '--expect_characters=9', '--expect_images=36']
    proc = prepare('prepare_omniglot.py', *args)
    assert proc.returncode == 0, proc.stderr
    alphabets = sorted(a for a in os.listdir(dest) if not a.startswith('.'))
    assert alphabets == ['images_background_A0', 'images_background_A1', 'images_evaluation_A0']
    png = os.path.join(dest, alphabets[0], 'character01', '0000_00.png')
    with Image.open(png) as image:
        assert image.size == (28, 28) and image.mode == '1'
        assert set(np.unique(np.asarray(image.convert('L')))) <= {0, 255}
    again = prepare('prepare_omniglot.py', *args)
    assert again.returncode == 0 and 'already prepared' in again.stdout


@pytest.mark.slow
def test_prepare_omniglot_errors_leave_nothing_behind(tmp_path):
    dest = str(tmp_path / 'omniglot_resized')
    proc = prepare('prepare_omniglot.py', '--source', str(tmp_path), '--dest', dest)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith('error:') and 'images_background.zip' in proc.stderr
    synthetic.omniglot_zips(str(tmp_path))
    proc = prepare('prepare_omniglot.py', '--source', str(tmp_path), '--dest', dest)
    assert proc.returncode == 1 and 'incomplete' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not os.path.exists(dest) and not os.path.exists(dest + '.partial')


@pytest.mark.slow
def test_prepare_miniimagenet_prepares_present_splits_and_names_missing(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val', 'test'))
    big_name, big_label = listed(source, 'val', 0)
    Image.new('RGB', (100, 90), (10, 200, 30)).save(os.path.join(source, 'images', big_name))
    dest = str(tmp_path / 'miniImagenet')
    proc = prepare('prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert proc.returncode == 0, proc.stderr
    assert 'train: its images are not in the source' in proc.stdout
    assert sorted(os.listdir(dest)) == ['test', 'val']
    assert len(sorted_dirs(os.path.join(dest, 'val'))) == 5
    assert all(len(os.listdir(os.path.join(dest, 'test', c))) == 8
               for c in sorted_dirs(os.path.join(dest, 'test')))
    with Image.open(os.path.join(dest, 'val', big_label, big_name)) as image:
        assert image.size == (84, 84)
    name, label = listed(source, 'test', 1)
    with open(os.path.join(dest, 'test', label, name), 'rb') as a, \
            open(os.path.join(source, 'images', name), 'rb') as b:
        assert a.read() == b.read()    # 84x84 images are copied byte for byte
    again = prepare('prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert 'val: already prepared' in again.stdout and again.returncode == 0


@pytest.mark.slow
def test_prepare_miniimagenet_errors(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val',))
    dest = str(tmp_path / 'miniImagenet')
    corrupt, _ = listed(source, 'val', 3)
    with open(os.path.join(source, 'images', corrupt), 'wb') as f:
        f.write(b'not a jpeg')
    proc = prepare('prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f'error: {corrupt} is not a readable image')
    assert not os.path.exists(os.path.join(dest, 'val'))
    os.remove(os.path.join(source, 'test.csv'))
    proc = prepare('prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert proc.returncode == 1 and 'test.csv not found' in proc.stderr


@pytest.mark.slow
def test_prepare_miniimagenet_reads_csvs_saved_with_a_byte_order_mark_and_skips_hidden_members(
        tmp_path):
    """Excel saves CSVs with a UTF-8 byte-order mark; macOS's zip adds __MACOSX/ and ._*
    entries beside each image."""
    import zipfile
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), classes=(2, 2, 2), per_class=3)
    for split in ('train', 'val', 'test'):
        path = os.path.join(source, f'{split}.csv')
        with open(path, encoding='utf-8') as f:
            text = f.read()
        with open(path, 'w', encoding='utf-8-sig') as f:
            f.write(text)
    images = os.path.join(source, 'images')
    with zipfile.ZipFile(os.path.join(source, 'images.zip'), 'w') as archive:
        for name in sorted(os.listdir(images)):
            archive.write(os.path.join(images, name), f'images/{name}')
            archive.writestr(f'__MACOSX/images/._{name}', b'\x00\x05\x16\x07')
            archive.writestr(f'images/._{name}', b'\x00\x05\x16\x07')
    import shutil
    shutil.rmtree(images)
    proc = prepare('prepare_miniimagenet.py', '--source', source, '--dest',
                   str(tmp_path / 'mini'))
    assert proc.returncode == 0, proc.stderr
    assert sorted_dirs(str(tmp_path / 'mini' / 'train')) == ['n00000000', 'n00000001']


@pytest.mark.parametrize('case', ['user_folder', 'dest_is_source', 'user_partial'])
@pytest.mark.slow
def test_prepare_omniglot_never_replaces_a_folder_it_did_not_make(tmp_path, case):
    os.makedirs(tmp_path / 'zips')
    source = synthetic.omniglot_zips(str(tmp_path / 'zips'))
    dest = {'user_folder': str(tmp_path / 'mine'), 'dest_is_source': source,
            'user_partial': str(tmp_path / 'out')}[case]
    precious = dest + ('.partial' if case == 'user_partial' else '')
    os.makedirs(precious, exist_ok=True)
    with open(os.path.join(precious, 'thesis.tex'), 'w') as f:
        f.write('years of work')
    before = sorted(os.listdir(precious))
    proc = run_script('data/prepare_omniglot.py', '--source', source, '--dest', dest,
                  '--expect_characters=9', '--expect_images=36')
    assert f'{precious} exists and was not made by data/prepare_omniglot.py' in one_error_line(proc)
    assert sorted(os.listdir(precious)) == before
    shutil.rmtree(precious)
    os.makedirs(precious)                    # an empty folder holds nothing to lose
    if case != 'dest_is_source':
        assert run_script('data/prepare_omniglot.py', '--source', source, '--dest', dest,
                      '--expect_characters=9', '--expect_images=36').returncode == 0


@pytest.mark.parametrize('damage', ['same_size', 'truncated'])
@pytest.mark.slow
def test_a_damaged_prepared_image_is_named_and_rebuilt(tmp_path, damage):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val', 'test'))
    dest = str(tmp_path / 'miniImagenet')
    prepare = ['data/prepare_miniimagenet.py', '--source', source, '--dest', dest]
    assert run_script(*prepare).returncode == 0
    image = sorted(glob.glob(os.path.join(dest, 'val', '*', '*.jpg')))[3]
    good = open(image, 'rb').read()
    with open(image, 'r+b') as f:
        if damage == 'truncated':
            f.truncate(len(good) // 2)
        else:                                # other bytes, same size: only the checksum tells
            f.seek(len(good) // 2)
            f.write(bytes(255 - b for b in good[len(good) // 2:len(good) // 2 + 16]))
    changed = os.path.relpath(image, os.path.join(dest, 'val'))
    found = prepared.differences(os.path.join(dest, 'val'), checksums=True)
    assert found == [f'1 changed ({changed})']
    if damage == 'truncated':                # main.py's quick check (names and sizes) sees it too
        with pytest.raises(UserError, match=f'is not what data/prepare_miniimagenet.py prepared: '
                                            f'1 changed \\({changed}\\)'):
            loading.load_miniimagenet(str(tmp_path), ['val'], 84)
    again = run_script('data/prepare_miniimagenet.py', '--source', source, '--dest', dest)
    assert again.returncode == 0
    assert 'preparing it again' in again.stdout and 'test: already prepared' in again.stdout
    assert open(image, 'rb').read() == good


@pytest.mark.slow
@pytest.mark.parametrize('script', ['prepare_omniglot.py', 'prepare_miniimagenet.py',
                                    'prepare_folder.py'])
def test_an_empty_dest_is_refused(tmp_path, script):
    proc = run_script(f'data/{script}', '--source', str(tmp_path), '--dest', '')
    assert proc.returncode == 2 and 'argument --dest: must name a folder' in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize('script', ['prepare_omniglot.py', 'prepare_miniimagenet.py',
                                    'prepare_folder.py'])
def test_a_source_that_is_a_file_or_missing_is_refused_before_any_work(tmp_path, script):
    """The downloaded zip given as --source is answered with its folder; a mistyped
    --source used to pass unnoticed where the data was already prepared."""
    archive = tmp_path / 'images.zip'
    archive.write_bytes(b'PK')
    dest = str(tmp_path / 'dest')
    proc = run_script(f'data/{script}', '--source', str(archive), '--dest', dest)
    assert proc.returncode == 2, proc.stderr
    advice = (f'give the folder holding it, {tmp_path}' if script != 'prepare_folder.py' else
              '--source is the folder whose sub-folders are the classes (if it lies in a class '
              f'folder, that is {tmp_path.parent})')
    joint = ':' if script != 'prepare_folder.py' else ';'
    assert proc.stderr == f'error: argument --source: {archive} is a file{joint} {advice}\n'
    proc = run_script(f'data/{script}', '--source', str(tmp_path / 'typo'), '--dest', dest)
    assert proc.returncode == 2 and f'{tmp_path / "typo"} is not a folder' in proc.stderr
    assert not os.path.exists(dest)


@pytest.mark.parametrize('header,message', [
    ('name,class', 'does not start with the header filename,label'),
    ('', 'does not start with the header filename,label'),
])
@pytest.mark.slow
def test_a_split_csv_of_another_format_is_named(tmp_path, header, message):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val',))
    path = os.path.join(source, 'val.csv')
    rows = open(path).read().splitlines()[1:]
    with open(path, 'w') as f:
        f.write('\n'.join([header] + rows if header else []))
    proc = run_script('data/prepare_miniimagenet.py', '--source', source,
                      '--dest', str(tmp_path / 'out'))
    assert message in one_error_line(proc) and 'val.csv' in proc.stderr


@pytest.mark.slow
def test_rerunning_prepare_omniglot_keeps_added_files_and_one_preparation_at_a_time(tmp_path):
    source = synthetic.omniglot_zips(str(tmp_path))
    dest = tmp_path / 'omniglot_resized'
    args = ['--source', source, '--dest', str(dest), '--expect_characters=9',
            '--expect_images=36']
    assert run_script('data/prepare_omniglot.py', *args).returncode == 0
    os.remove(next(dest.glob('*/character01/*.png')))         # damaged: it is rebuilt...
    (dest / 'my_notes.txt').write_text('mine')                 # ...but this is not ours
    line = one_error_line(run_script('data/prepare_omniglot.py', *args))
    assert 'holds 1 files it was not prepared with (my_notes.txt)' in line
    assert (dest / 'my_notes.txt').read_text() == 'mine'
    os.remove(dest / 'my_notes.txt')
    with open(str(dest) + '.lock', 'w') as f:                 # another preparation, running
        f.write(f'{os.getpid()} {utils.process_start(os.getpid())}')
    line = one_error_line(run_script('data/prepare_omniglot.py', *args))
    assert f'process {os.getpid()} is preparing {dest}' in line
    with open(str(dest) + '.lock', 'w') as f:                 # its pid reused by another process
        f.write(f'{os.getpid()} 1')
    proc = run_script('data/prepare_omniglot.py', *args)
    assert proc.returncode == 0 and 'Prepared' in proc.stdout, proc.stderr
    assert not os.path.exists(str(dest) + '.lock')


@pytest.mark.slow
def test_prepare_omniglot_rebuilds_a_damaged_tree(tmp_path):
    source = synthetic.omniglot_zips(str(tmp_path))
    dest = str(tmp_path / 'omniglot_resized')
    args = [sys.executable, os.path.join(ROOT, 'data', 'prepare_omniglot.py'), '--source', source,
            '--dest', dest, '--expect_characters=9', '--expect_images=36']
    subprocess.run(args, check=True, capture_output=True)
    png = glob.glob(os.path.join(dest, '*', '*', '*.png'))[0]
    open(png, 'wb').write(open(png, 'rb').read()[:20])
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and 'already prepared' not in again.stdout
    assert 'Prepared' in again.stdout


@pytest.mark.slow
def test_prepare_miniimagenet_names_a_damaged_zip_member(tmp_path):
    source = synthetic.miniimagenet_source(str(tmp_path / 'src'), splits=('val',))
    with zipfile.ZipFile(os.path.join(source, 'images_val_test.zip'), 'w', zipfile.ZIP_STORED) as z:
        for name in sorted(os.listdir(os.path.join(source, 'images'))):
            z.write(os.path.join(source, 'images', name), 'images/' + name)
    os.rename(os.path.join(source, 'images'), os.path.join(source, 'unused'))
    raw = bytearray(open(os.path.join(source, 'images_val_test.zip'), 'rb').read())
    raw[200] ^= 0xFF                         # inside the first member's data: a CRC error
    open(os.path.join(source, 'images_val_test.zip'), 'wb').write(bytes(raw))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'data', 'prepare_miniimagenet.py'),
                           '--source', source, '--dest', str(tmp_path / 'out')],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith('error: cannot read images/') and 'damaged' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

