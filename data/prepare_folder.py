"""Prepare your own images for MAML: DEST/{train,val,test}/<class>/<image>, N x N.

SRC holds either train/, val/ and test/ (any of them), each with one folder per class,
or only class folders: then the classes are shuffled with --seed and split in the
proportions --split gives (miniImagenet's 64/16/20 by default). Preparing again into
the same DEST keeps every class it already holds in its split: classes added to SRC
are placed where the proportions are furthest from --split, so adding data never
moves a class between train, val and test. Images of any size and format PIL reads
are read as data/images.py says (EXIF orientation applied, transparency composited
on white, 16-bit and float images scaled by their range) and resized to
--image_size; a data set whose images are all grayscale stays one channel, any colour
image makes it RGB. Images already N x N in the right mode, as JPEG or PNG, are copied
byte for byte; the others are written as PNG. Hidden files and folders are ignored;
any other file or folder that would not be used is refused, naming it.

  python data/prepare_folder.py --source ~/my_classes --dest data/my_classes --image_size 84
  python main.py --datasource=folder --data_dir=data/my_classes ...
"""
import argparse
import math
import os
import random
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # python data/x.py
from data import images, prepared
from data.prep_utils import ArgumentParser, AtomicFolder, PrepError, Progress, folder_argument, run

SCRIPT = prepared.FOLDER_SCRIPT
SPLITS = ('train', 'val', 'test')
DEFAULT_SPLIT = '64,16,20'
COPIED_FORMATS = {'JPEG': ('.jpg', '.jpeg'), 'PNG': ('.png',)}


def parse_args(argv=None):
    parser = ArgumentParser(__doc__)
    parser.add_argument('--source', type=class_source, required=True,
                        help='folder of class folders, or of train/, val/, test/ holding them')
    parser.add_argument('--dest', type=folder_argument, required=True,
                        help='output folder (give it as --data_dir)')
    parser.add_argument('--image_size', type=int, default=84, help='side N of the N x N images')
    parser.add_argument('--split', default=None,
                        help='train,val,test proportions of the classes when SRC has no split '
                             f'folders (default: {DEFAULT_SPLIT})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the class shuffle')
    args = parser.parse_args(argv)
    if not 1 <= args.image_size <= 4096:
        parser.error(f'--image_size must be between 1 and 4096 (got {args.image_size})')
    args.proportions = parse_split(parser, args.split or DEFAULT_SPLIT)
    return args


def class_source(text):
    """argparse type of --source: an existing folder. A file given instead (an image, a
    common slip) is answered with the folder of class folders it may lie in."""
    folder_argument(text)
    if os.path.isfile(text):
        class_folder = os.path.dirname(os.path.abspath(text))
        raise argparse.ArgumentTypeError(
            f'{text} is a file; --source is the folder whose sub-folders are the classes '
            f'(if it lies in a class folder, that is {os.path.dirname(class_folder)})')
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f'{text} is not a folder')
    return text


def parse_split(parser, text):
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if (len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values)
            or not 0 < sum(values) < math.inf):
        parser.error(f'--split takes three finite proportions train,val,test, not all 0, such '
                     f'as 64,16,20 (got {text!r})')
    if values[0] == 0:
        parser.error(f'--split {text} gives the train split no classes, and main.py trains on '
                     f'train/; for a folder to evaluate on only, put the class folders in '
                     f'SRC/test/ (or SRC/val/)')
    return values


def visible(folder, want_dirs):
    """Sorted names of the visible sub-folders (or files) of `folder`."""
    return sorted(n for n in os.listdir(folder) if not n.startswith('.')
                  and os.path.isdir(os.path.join(folder, n)) == want_dirs)


def refuse_loose_files(folder, what):
    """Files beside the class folders would be left out silently: name them instead."""
    loose = visible(folder, want_dirs=False)
    if loose:
        raise PrepError(f'{folder} holds files beside its class folders ({", ".join(loose[:3])}'
                        f'{", ..." if len(loose) > 3 else ""}), which would not be used; '
                        f'{what}. Nothing was written')


def split_counts(num_classes, proportions):
    """Classes per split: rounded shares, the remainder to the test split."""
    total = sum(proportions)
    train = round(num_classes * proportions[0] / total)
    val = min(round(num_classes * proportions[1] / total), num_classes - train)
    return train, val, num_classes - train - val


def read_layout(source, args, kept=None):
    """{split: [(class name, class folder)]} of the source. `kept`: {class: split} of the
    classes DEST already holds, which keep their split."""
    folders = visible(source, want_dirs=True)
    if not folders and visible(source, want_dirs=False):
        raise PrepError(f'{source} holds files but no class folders; give the folder whose '
                        f'sub-folders are the classes (one folder of images per class)')
    if not folders:
        raise PrepError(f'{source} holds no class folders')
    splits = [f for f in folders if f in SPLITS]
    if splits:
        return given_splits(source, folders, splits, args)
    refuse_loose_files(source, 'move them into a class folder or out of --source')
    classes = [(c, os.path.join(source, c)) for c in folders]
    random.Random(args.seed).shuffle(classes)
    if kept:
        return keep_splits(classes, args.proportions, kept)
    counts = split_counts(len(classes), args.proportions)
    empty = [s for s, n, p in zip(SPLITS, counts, args.proportions) if n == 0 and p > 0]
    if empty:
        raise PrepError(f'{len(classes)} classes are too few to split as --split '
                        f'{",".join(f"{p:g}" for p in args.proportions)}: the '
                        f'{", ".join(empty)} split would have none')
    starts = [0, counts[0], counts[0] + counts[1], len(classes)]
    return {s: classes[starts[i]:starts[i + 1]] for i, s in enumerate(SPLITS) if counts[i]}


def given_splits(source, folders, splits, args):
    """The layout of a source already split into train/, val/, test/."""
    others = [f for f in folders if f not in SPLITS]
    if others:
        raise PrepError(f'{source} mixes split folders ({", ".join(splits)}) with other '
                        f'folders ({", ".join(others[:3])}); put every class folder in '
                        f'train/, val/ or test/, or none of them')
    if args.split is not None:
        raise PrepError(f'{source} is already split into {", ".join(s + "/" for s in splits)}; '
                        f'--split divides a folder of classes: leave it out')
    refuse_loose_files(source, 'move them into a class folder of a split, or out of --source')
    layout = {}
    for s in splits:
        refuse_loose_files(os.path.join(source, s), 'move them into a class folder')
        layout[s] = [(c, os.path.join(source, s, c)) for c in visible(os.path.join(source, s),
                                                                       True)]
    return layout


def keep_splits(classes, proportions, kept):
    """Each class DEST already holds stays in its split; each new class (in the seeded
    order) goes to the split furthest below its share of --split."""
    layout = {s: [] for s in SPLITS}
    new = []
    for name, folder in classes:
        (layout[kept[name]] if name in kept else new).append((name, folder))
    total, weight = len(classes), sum(proportions)
    for entry in new:
        deficits = [(proportions[i] / weight * total - len(layout[s]), -i)
                    for i, s in enumerate(SPLITS) if proportions[i] > 0]
        _, index = max(deficits)
        layout[SPLITS[-index]].append(entry)
    return {s: sorted(c) for s, c in layout.items() if c}


def kept_splits(dest, args):
    """{class: split} of a DEST this script made from a folder of classes with the same
    --seed and --split, so a preparation with classes added keeps the others' splits;
    None where there is none (or another --seed or --split asks for a new split)."""
    if not os.path.isdir(dest):
        return None
    try:
        if prepared.made_by(dest) != SCRIPT:
            return None
        info, files = prepared.read_info(dest), prepared.read_record(dest)
    except prepared.RecordError:
        return None
    if info.get('seed', args.seed) != args.seed or info.get(
            'split', args.proportions) != args.proportions:
        print(f'{dest} was split with --seed {info.get("seed")} --split '
              f'{",".join(f"{p:g}" for p in info.get("split", []))}: the classes are split anew')
        return None
    kept = {}
    for path in files:
        parts = path.split(os.sep)
        if len(parts) == 3 and parts[0] in SPLITS:
            kept[parts[1]] = parts[0]
    return kept


def class_images(folder):
    """The image paths of a class folder; a sub-folder in it is refused, named."""
    nested = visible(folder, want_dirs=True)
    if nested:
        raise PrepError(f'class folder {folder} holds sub-folders ({", ".join(nested[:3])}), '
                        f'whose images would not be used; put its images directly in it, or '
                        f'make each sub-folder a class of its own. Nothing was written')
    paths = [os.path.join(folder, f) for f in visible(folder, want_dirs=False)]
    if not paths:
        raise PrepError(f'class folder {folder} holds no images')
    return paths


def read_headers(layout):
    """{(split, class): [(path, header)]}; an unreadable file is named."""
    found = {}
    for split, classes in layout.items():
        if not classes:
            raise PrepError(f'the {split} split of the source holds no class folders')
        for name, folder in classes:
            entries = []
            for path in class_images(folder):
                try:
                    entries.append((path, images.header(path)))
                except images.ImageReadError as err:
                    raise PrepError(f'{path} is not a readable image ({err}); nothing was '
                                    f'written') from None
            found[split, name] = entries
    return found


def plan(found, size):
    """The channels of the data set (1 when every image is grayscale) and, per class,
    [(source path, output name, copied as is)]. Two sources given one output name
    (a.png copied beside a.jpg converted to a.png) are refused, named."""
    channels = max(h.channels for entries in found.values() for _, h in entries)
    planned = {}
    for key, entries in found.items():
        names = [os.path.basename(p) for p, _ in entries]
        outputs, taken = [], {}
        for path, head in entries:
            copy = is_copied(path, head, size, channels)
            out = os.path.basename(path) if copy else png_name(os.path.basename(path), names)
            if out.lower() in taken:
                raise PrepError(f'{taken[out.lower()]} and {path} would both be written as '
                                f'{out}; rename one of them. Nothing was written')
            taken[out.lower()] = path
            outputs.append((path, out, copy))
        planned[key] = outputs
    return channels, planned


def is_copied(path, head, size, channels):
    """An image that needs no change: the right size and mode, no orientation, alpha or
    high bit depth to apply, and a JPEG or PNG named as one."""
    return (head.size == (size, size) and head.mode == images.MODE_OF_CHANNELS[channels]
            and head.plain
            and os.path.basename(path).lower().endswith(COPIED_FORMATS.get(head.format, ())))


def png_name(name, names):
    """The PNG name of a converted image: its stem, unless another image of its class
    has the same stem (a.jpg and a.gif), then its whole name."""
    stem = os.path.splitext(name)[0]
    same_stem = [n for n in names if os.path.splitext(n)[0] == stem]
    return (stem if len(same_stem) == 1 else name) + '.png'


def write_image(path, out_path, copy, size, channels):
    """Copy an image that needs no change, write any other as PNG; its pixels."""
    try:
        image = images.converted(path, size, channels)     # decodes: a corrupt file fails here
    except images.ImageReadError as err:
        raise PrepError(f'{path} is not a readable image ({err}); nothing was written') from None
    if copy:
        shutil.copyfile(path, out_path)
    else:
        image.save(out_path)
    return np.asarray(image)


def check_apart(source, dest):
    """Refuse a --dest inside --source (the next run would take it for a class) or
    a --source inside --dest (which the output replaces)."""
    src, dst = os.path.realpath(source), os.path.realpath(dest)
    if dst == src:
        raise PrepError(f'--dest={dest} is --source; choose another --dest. Nothing was changed')
    if dst.startswith(src + os.sep):
        raise PrepError(f'--dest={dest} lies inside --source={source}, where it would be taken '
                        f'for a class folder; choose a --dest outside it. Nothing was changed')
    if src.startswith(dst + os.sep):
        raise PrepError(f'--source={source} lies inside --dest={dest}, which the output '
                        f'replaces; choose another --dest. Nothing was changed')


def prepare(args):
    """Prepare DEST; (layout, {(split, class): image count}, channels, [solid classes])."""
    check_apart(args.source, args.dest)
    presplit = any(f in SPLITS for f in visible(args.source, want_dirs=True))
    kept = None if presplit else kept_splits(args.dest, args)
    layout = read_layout(args.source, args, kept)
    channels, planned = plan(read_headers(layout), args.image_size)
    output = AtomicFolder(args.dest, SCRIPT)
    solid = []
    with output as partial:
        progress = Progress('images', sum(len(p) for p in planned.values()))
        done = 0
        for (split, name), entries in planned.items():
            folder = os.path.join(partial, split, name)
            os.makedirs(folder)
            low, high = 255, 0
            for path, out, copy in entries:
                values = write_image(path, os.path.join(folder, out), copy, args.image_size,
                                     channels)
                low, high = min(low, int(values.min())), max(high, int(values.max()))
                done += 1
                progress.step(done)
            if low == high:
                solid.append((split, name, low))
        output.commit(image_size=args.image_size, channels=channels, seed=args.seed,
                      split=args.proportions)
    counts = {key: len(entries) for key, entries in planned.items()}
    return layout, counts, channels, solid, kept


def main(argv=None):
    args = parse_args(argv)
    layout, counts, channels, solid, kept = prepare(args)
    kind = 'grayscale' if channels == 1 else 'RGB'
    for split, classes in layout.items():
        sizes = [counts[split, name] for name, _ in classes]
        print(f'{split}: {len(classes)} classes, {sum(sizes)} images '
              f'({min(sizes)}-{max(sizes)} per class)')
    if kept:
        names = [name for classes in layout.values() for name, _ in classes]
        new = [name for name in names if name not in kept]
        print(f'{len(names) - len(new)} classes kept their split; {len(new)} new ones were '
              f'placed' + (f' ({", ".join(new[:3])}{", ..." if len(new) > 3 else ""})'
                           if new else ''))
    for split, name, value in solid:
        print(f'Warning: every image of class {name} ({split}) came out one solid value '
              f'({value}); check that its source images are what you expect')
    print(f'Prepared {args.dest}: {args.image_size}x{args.image_size} {kind}; train on it with '
          f'`python main.py --datasource=folder --data_dir={args.dest}`')


if __name__ == '__main__':
    run(main)
