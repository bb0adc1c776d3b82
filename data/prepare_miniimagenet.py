"""Prepare miniImagenet for MAML: data/miniImagenet/{train,val,test}/<wnid>/*.jpg, 84x84.

The source is the Ravi & Larochelle distribution: train.csv, val.csv, test.csv
(`filename,label`) and the JPEGs, as a folder `images/` or a zip holding `images/`
(images.zip, or images_val_test.zip with only the val and test images). Images
already 84x84 are copied byte for byte; others are resized with LANCZOS as the
reference's proc_images.py did. Splits whose images are absent are skipped and named.

  python data/prepare_miniimagenet.py --source ~/Downloads/miniImagenet
"""
import collections
import csv
import io
import os
import sys
import zipfile
import zlib

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
    run,
    source_folder,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = ('train', 'val', 'test')
SIZE = (84, 84)
ZIP_NAMES = ('images.zip', 'images_val_test.zip')


def parse_args():
    parser = ArgumentParser(__doc__)
    parser.add_argument('--source', type=source_folder, required=True,
                        help='folder holding the split CSVs and images/ or images.zip')
    parser.add_argument('--dest', type=folder_argument, default=os.path.join(HERE, 'miniImagenet'),
                        help='output folder')
    return parser.parse_args()


class ImageSource:
    """Reads image bytes by file name from an images/ folder or from zips."""

    def __init__(self, source):
        self.folder = os.path.join(source, 'images')
        self.members = {}
        self.zips = []
        for name in ZIP_NAMES:
            path = os.path.join(source, name)
            if os.path.isfile(path):
                try:
                    archive = zipfile.ZipFile(path)
                except zipfile.BadZipFile:
                    raise PrepError(f'{path} is not a valid zip file') from None
                self.zips.append(archive)
                for member in archive.namelist():
                    if member.lower().endswith('.jpg') and not hidden_member(member):
                        self.members[os.path.basename(member)] = (archive, member)

    def has(self, filename):
        return filename in self.members or os.path.isfile(os.path.join(self.folder, filename))

    def read(self, filename):
        if filename in self.members:
            archive, member = self.members[filename]
            try:
                return archive.read(member)
            except (zipfile.BadZipFile, zlib.error, OSError) as err:
                raise PrepError(f'cannot read {member} in {archive.filename} ({err}); '
                                f'the zip is damaged: download it again') from None
        with open(os.path.join(self.folder, filename), 'rb') as f:
            return f.read()


def read_split_csv(source, split):
    """{label: [filenames]} from <split>.csv, in file order."""
    path = os.path.join(source, f'{split}.csv')
    if not os.path.isfile(path):
        raise PrepError(f'{path} not found (--source must hold train.csv, val.csv and test.csv)')
    classes = collections.OrderedDict()
    with open(path, newline='', encoding='utf-8-sig', errors='replace') as f:
        reader = csv.DictReader(f)
        if not {'filename', 'label'} <= set(reader.fieldnames or []):
            raise PrepError(f'{path} does not start with the header filename,label '
                            f'(found {",".join(reader.fieldnames or []) or "nothing"})')
        for row in reader:
            if not row['filename'] or not row['label']:
                raise PrepError(f'{path} line {reader.line_num} lacks a filename or a label')
            classes.setdefault(row['label'], []).append(row['filename'])
    if not classes:
        raise PrepError(f'{path} lists no images')
    return classes


def write_image(data, filename, out_path):
    """Copy an 84x84 JPEG as is; resize any other; fail clearly on a corrupt file."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.size != SIZE:
                image.convert('RGB').resize(SIZE, resample=Image.LANCZOS).save(out_path)
                return
    except OSError as err:
        raise PrepError(f'{filename} is not a readable image ({err})') from None
    with open(out_path, 'wb') as f:
        f.write(data)


def is_prepared(split_dir, classes):
    """The split folder still matches the record written after it was built (names,
    sizes, checksums), and holds exactly the images the CSV lists."""
    if not prepared.matches(split_dir):
        return False
    listed = {os.path.join(label, f) for label, files in classes.items() for f in files}
    return set(prepared.read_record(split_dir)) == listed


def prepare_split(split, classes, images, dest):
    split_dir = os.path.join(dest, split)
    total = sum(len(files) for files in classes.values())
    if is_prepared(split_dir, classes):
        print(f'{split}: already prepared ({len(classes)} classes, {total} images)')
        return True
    present = sum(images.has(f) for files in classes.values() for f in files)
    if present == 0:
        print(f'{split}: its images are not in the source; skipped')
        return False
    if present < total:
        raise PrepError(f'{split}: only {present} of the {total} images listed in {split}.csv '
                        f'are in the source')
    if os.path.isdir(split_dir):
        print(f'{split}: {split_dir} does not match what was prepared; preparing it again')
    output = AtomicFolder(split_dir, 'data/prepare_miniimagenet.py')
    with output as partial:
        progress = Progress(split, total)
        done = 0
        for label, files in classes.items():
            os.makedirs(os.path.join(partial, label))
            for filename in files:
                write_image(images.read(filename), filename, os.path.join(partial, label, filename))
                done += 1
                progress.step(done)
        output.commit()
    print(f'{split}: {len(classes)} classes, {total} images')
    return True


def main():
    args = parse_args()
    split_classes = {split: read_split_csv(args.source, split) for split in SPLITS}
    images = ImageSource(args.source)
    os.makedirs(args.dest, exist_ok=True)
    prepared = [s for s in SPLITS if prepare_split(s, split_classes[s], images, args.dest)]
    missing = [s for s in SPLITS if s not in prepared]
    print(f'Prepared {args.dest}: {", ".join(prepared) or "no split"}'
          + (f'; not in the source: {", ".join(missing)}' if missing else ''))
    if not prepared:
        raise PrepError('the source holds no images of any split')


if __name__ == '__main__':
    run(main)
