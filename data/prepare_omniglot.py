"""Prepare Omniglot for MAML: data/omniglot_resized/<alphabet>/<character>/*.png, 28x28.

Takes the two upstream zips from a local folder (--source DIR) or downloads them.
Each 105x105 1-bit image is resized as the reference did, with PIL's
resize((28, 28), LANCZOS) on the image as opened; PIL resizes 1-bit images with
nearest-neighbour, so the result stays binary.

  python data/prepare_omniglot.py --source ~/Downloads/omniglot
  python data/prepare_omniglot.py            # downloads from the Omniglot repository
"""
import argparse
import io
import os
import sys
import zipfile

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # python data/x.py
from data import prepared
from data.prep_utils import (
    ArgumentParser,
    AtomicFolder,
    PrepError,
    Progress,
    folder_argument,
    hidden_member,
    locate,
    run,
    source_folder,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ZIPS = ('images_background.zip', 'images_evaluation.zip')
URL = 'https://github.com/brendenlake/omniglot/raw/master/python/'
NUM_CHARACTERS, NUM_IMAGES = 1623, 32460


def parse_args():
    parser = ArgumentParser(__doc__)
    parser.add_argument('--source', type=source_folder,
                        help='folder holding images_background.zip and images_evaluation.zip')
    parser.add_argument('--dest', type=folder_argument,
                        default=os.path.join(HERE, 'omniglot_resized'),
                        help='output folder')
    parser.add_argument('--download_dir', default=os.path.join(HERE, 'downloads'))
    hidden = argparse.SUPPRESS      # for tests and the smoke reproduction on tiny data
    parser.add_argument('--expect_characters', type=int, default=NUM_CHARACTERS, help=hidden)
    parser.add_argument('--expect_images', type=int, default=NUM_IMAGES, help=hidden)
    return parser.parse_args()


def counts(files):
    """(characters, images) of an <alphabet>/<character>/*.png file list."""
    return len({os.path.dirname(p) for p in files}), len(files)


def is_prepared(folder, expected):
    """Prepared means built and verified here: the folder still matches the record
    written after the build (names, sizes, checksums), with the expected counts."""
    return prepared.matches(folder) and counts(prepared.read_record(folder)) == expected


def png_members(zip_file):
    """(alphabet, character, filename, member) for each PNG: top/alphabet/character/file
    (hidden members, such as macOS's ._* files and __MACOSX/, left out)."""
    for member in sorted(zip_file.namelist()):
        if hidden_member(member):
            continue
        parts = member.split('/')
        if len(parts) == 4 and parts[3].endswith('.png'):
            yield parts[1], parts[2], parts[3], member


def resize_zip(zip_path, out_dir):
    try:
        zip_file = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise PrepError(f'{zip_path} is not a valid zip file') from None
    with zip_file:
        members = list(png_members(zip_file))
        progress = Progress(os.path.basename(zip_path), len(members))
        for done, (alphabet, character, name, member) in enumerate(members, 1):
            folder = os.path.join(out_dir, alphabet, character)
            os.makedirs(folder, exist_ok=True)
            try:
                image = Image.open(io.BytesIO(zip_file.read(member)))
                image.resize((28, 28), resample=Image.LANCZOS).save(os.path.join(folder, name))
            except (OSError, zipfile.BadZipFile) as err:
                raise PrepError(f'cannot read {member} in {zip_path}: {err}') from None
            progress.step(done)


def main():
    args = parse_args()
    expected = (args.expect_characters, args.expect_images)
    if is_prepared(args.dest, expected):
        print(f'{args.dest} is already prepared ({expected[0]} characters, {expected[1]} images)')
        return
    if os.path.isdir(args.dest):
        print(f'{args.dest} does not match what was prepared; preparing it again')
    zips = [locate(name, args.source, URL + name, args.download_dir) for name in ZIPS]
    output = AtomicFolder(args.dest, 'data/prepare_omniglot.py')
    with output as partial:
        for zip_path in zips:
            resize_zip(zip_path, partial)
        found = counts(prepared.visible_files(partial))
        if found != expected:
            raise PrepError(f'the source is incomplete: {found[0]} characters and {found[1]} '
                            f'images, expected {expected[0]} and {expected[1]}')
        output.commit()
    print(f'Prepared {args.dest}: {expected[0]} characters, {expected[1]} images')


if __name__ == '__main__':
    run(main)
