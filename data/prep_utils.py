"""Pieces shared by the data preparation scripts: finding or downloading a source
file, writing the output folder atomically, progress lines, one-line errors."""
import os
import shutil
import sys
import time
import urllib.request

from data import prepared


class PrepError(Exception):
    """Printed as one line by `run`."""


def run(main):
    """Call main(); turn PrepError and Ctrl-C into a one-line message and exit code."""
    try:
        main()
    except PrepError as err:
        sys.exit(f'error: {err}')
    except KeyboardInterrupt:
        sys.exit('interrupted: nothing was marked as prepared; run again to start over')


def locate(name, source, url, download_dir):
    """Path of `name` in the local `source` folder, or downloaded from `url` when no source."""
    if source:
        path = os.path.join(source, name)
        if not os.path.isfile(path):
            raise PrepError(f'{path} not found (--source must hold {name})')
        return path
    path = os.path.join(download_dir, name)
    if os.path.isfile(path):
        return path
    os.makedirs(download_dir, exist_ok=True)
    print(f'Downloading {url}', flush=True)
    try:
        urllib.request.urlretrieve(url, path + '.part')
    except OSError as err:
        raise PrepError(f'download of {url} failed ({err}); download it by hand and '
                        f'pass its folder as --source') from None
    os.replace(path + '.part', path)
    return path


class AtomicFolder:
    """Write into `<dest>.partial`, then rename to `dest` once verified and recorded.

    Only a folder that a preparation script made (one holding its record) is ever
    replaced or removed: anything else at `dest` is refused before any work starts.
    """

    def __init__(self, dest):
        self.dest, self.partial = dest.rstrip('/'), dest.rstrip('/') + '.partial'

    def __enter__(self):
        for folder in (self.dest, self.partial):
            if os.path.isdir(folder) and os.listdir(folder) and not prepared.has_record(folder):
                raise PrepError(f'{folder} exists and was not made by this script (it holds '
                                f'no {prepared.RECORD} record); move it away or choose another '
                                f'--dest. Nothing was changed')
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise PrepError(f'{folder} is a file; move it away or choose another --dest')
        if os.path.isdir(self.partial):
            shutil.rmtree(self.partial)
        os.makedirs(self.partial)
        prepared.write_record(self.partial)    # marks it as ours until the real record
        return self.partial

    def commit(self):
        prepared.write_record(self.partial)
        if os.path.exists(self.dest):
            shutil.rmtree(self.dest)
        os.replace(self.partial, self.dest)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
        return False


class Progress:
    """Prints 'what: done/total' at most every `every` seconds, and at the end."""

    def __init__(self, what, total, every=5.0):
        self.what, self.total, self.every = what, total, every
        self.last = 0.0

    def step(self, done):
        now = time.time()
        if done == self.total or now - self.last >= self.every:
            self.last = now
            print(f'  {self.what}: {done}/{self.total}', flush=True)
