"""The data preparation scripts on tiny synthetic sources, and the reference checkpoint."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from data import synthetic
from data.loading import sorted_dirs
from tests.helpers import run_script


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
