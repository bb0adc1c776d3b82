"""Prepare your own images for MAML: DEST/{train,val,test}/<class>/<image>, N x N.

SRC holds either train/, val/ and test/ (any of them), each with one folder per class,
or only class folders: then the classes are shuffled with --seed and split in the
proportions --split gives (miniImagenet's 64/16/20 by default). Images of any size and
format PIL reads are resized to --image_size (as data/images.py says); a data set whose
images are all grayscale stays one channel, any colour image makes it RGB. Images
already N x N in the right mode, as JPEG or PNG, are copied byte for byte; the others
are written as PNG. Hidden files and folders are ignored.

  python data/prepare_folder.py --source ~/my_classes --dest data/my_classes --image_size 84
  python main.py --datasource=folder --data_dir=data/my_classes ...
"""
import argparse
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # python data/x.py
from data import images
from data.prep_utils import AtomicFolder, PrepError, Progress, folder_argument, run, source_folder

SPLITS = ('train', 'val', 'test')
COPIED_FORMATS = {'JPEG': ('.jpg', '.jpeg'), 'PNG': ('.png',)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--source', type=source_folder, required=True,
                        help='folder of class folders, or of train/, val/, test/ holding them')
    parser.add_argument('--dest', type=folder_argument, required=True,
                        help='output folder (give it as --data_dir)')
    parser.add_argument('--image_size', type=int, default=84, help='side N of the N x N images')
    parser.add_argument('--split', default='64,16,20',
                        help='train,val,test proportions of the classes when SRC has no split '
                             'folders (default: 64,16,20)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the class shuffle')
    args = parser.parse_args(argv)
    if not 1 <= args.image_size <= 4096:
        parser.error(f'--image_size must be between 1 and 4096 (got {args.image_size})')
    args.proportions = parse_split(parser, args.split)
    return args


def parse_split(parser, text):
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 0 or sum(values) <= 0:
        parser.error(f'--split takes three proportions train,val,test such as 64,16,20 '
                     f'(got {text!r})')
    return values


def visible(folder, want_dirs):
    """Sorted names of the visible sub-folders (or files) of `folder`."""
    return sorted(n for n in os.listdir(folder) if not n.startswith('.')
                  and os.path.isdir(os.path.join(folder, n)) == want_dirs)


def split_counts(num_classes, proportions):
    """Classes per split: rounded shares, the remainder to the test split."""
    total = sum(proportions)
    train = round(num_classes * proportions[0] / total)
    val = min(round(num_classes * proportions[1] / total), num_classes - train)
    return train, val, num_classes - train - val


def read_layout(source, proportions, seed):
    """{split: [(class name, class folder)]} of the source."""
    folders = visible(source, want_dirs=True)
    if not folders and visible(source, want_dirs=False):
        raise PrepError(f'{source} holds files but no class folders; give the folder whose '
                        f'sub-folders are the classes (one folder of images per class)')
    if not folders:
        raise PrepError(f'{source} holds no class folders')
    splits = [f for f in folders if f in SPLITS]
    if splits:
        others = [f for f in folders if f not in SPLITS]
        if others:
            raise PrepError(f'{source} mixes split folders ({", ".join(splits)}) with other '
                            f'folders ({", ".join(others[:3])}); put every class folder in '
                            f'train/, val/ or test/, or none of them')
        return {s: [(c, os.path.join(source, s, c)) for c in visible(os.path.join(source, s), True)]
                for s in splits}
    classes = [(c, os.path.join(source, c)) for c in folders]
    random.Random(seed).shuffle(classes)
    counts = split_counts(len(classes), proportions)
    empty = [s for s, n in zip(SPLITS, counts) if n == 0 and proportions[SPLITS.index(s)] > 0]
    if empty:
        raise PrepError(f'{len(classes)} classes are too few to split as --split '
                        f'{",".join(f"{p:g}" for p in proportions)}: the {", ".join(empty)} '
                        f'split would have none')
    starts = [0, counts[0], counts[0] + counts[1], len(classes)]
    return {s: classes[starts[i]:starts[i + 1]] for i, s in enumerate(SPLITS) if counts[i]}


def list_images(layout):
    """{(split, class): [image paths]} and the channels of the data set (1 when every
    image is grayscale); an unreadable file is named."""
    found, channels = {}, 1
    for split, classes in layout.items():
        if not classes:
            raise PrepError(f'the {split} split of the source holds no class folders')
        for name, folder in classes:
            paths = [os.path.join(folder, f) for f in visible(folder, want_dirs=False)]
            if not paths:
                raise PrepError(f'class folder {folder} holds no images')
            for path in paths:
                try:
                    channels = max(channels, images.header(path)[3])
                except images.ImageReadError as err:
                    raise PrepError(f'{path} is not a readable image ({err}); nothing was '
                                    f'written') from None
            found[split, name] = paths
    return found, channels


def png_name(name, names):
    """The PNG name of a converted image: its stem, unless another image of its class
    has the same stem (a.jpg and a.gif), then its whole name."""
    stem = os.path.splitext(name)[0]
    same_stem = [n for n in names if os.path.splitext(n)[0] == stem]
    return (stem if len(same_stem) == 1 else name) + '.png'


def write_image(path, out_folder, size, channels, names):
    """Copy an image that needs no change; write any other as PNG."""
    name = os.path.basename(path)
    try:
        (width, height), mode, fmt, _ = images.header(path)
        if ((width, height) == (size, size) and mode == images.MODE_OF_CHANNELS[channels]
                and name.lower().endswith(COPIED_FORMATS.get(fmt, ()))):
            images.converted(path, size, channels)       # decodes: a corrupt file fails here
            shutil.copyfile(path, os.path.join(out_folder, name))
            return
        image = images.converted(path, size, channels)
        image.save(os.path.join(out_folder, png_name(name, names)))
    except images.ImageReadError as err:
        raise PrepError(f'{path} is not a readable image ({err}); nothing was written') from None


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
    check_apart(args.source, args.dest)
    layout = read_layout(args.source, args.proportions, args.seed)
    found, channels = list_images(layout)
    output = AtomicFolder(args.dest)
    with output as partial:
        progress = Progress('images', sum(len(p) for p in found.values()))
        done = 0
        for (split, name), paths in found.items():
            folder = os.path.join(partial, split, name)
            os.makedirs(folder)
            names = [os.path.basename(p) for p in paths]
            for path in paths:
                write_image(path, folder, args.image_size, channels, names)
                done += 1
                progress.step(done)
            if len(visible(folder, want_dirs=False)) != len(paths):
                raise PrepError(f'{folder}: {len(paths)} images expected, found '
                                f'{len(visible(folder, want_dirs=False))}')
        output.commit(image_size=args.image_size, channels=channels)
    return layout, found, channels


def main(argv=None):
    args = parse_args(argv)
    layout, found, channels = prepare(args)
    kind = 'grayscale' if channels == 1 else 'RGB'
    for split, classes in layout.items():
        sizes = [len(found[split, name]) for name, _ in classes]
        print(f'{split}: {len(classes)} classes, {sum(sizes)} images '
              f'({min(sizes)}-{max(sizes)} per class)')
    print(f'Prepared {args.dest}: {args.image_size}x{args.image_size} {kind}; train on it with '
          f'`python main.py --datasource=folder --data_dir={args.dest}`')


if __name__ == '__main__':
    run(main)
