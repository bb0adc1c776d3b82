"""Pieces shared by the data preparation scripts: finding or downloading a source
file, writing the output folder atomically, progress lines, one-line errors."""
import argparse
import os
import shutil
import time
import urllib.request

import utils
from data import prepared


class PrepError(utils.UserError):
    """Printed as one line by `run`."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose refusal of a bad argument is one line (exit code 2), without the
    usage block; --help still shows everything."""

    def __init__(self, description, **kwargs):
        super().__init__(description=description,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message):
        self.exit(2, f'error: {message}\n')


def folder_argument(text):
    """argparse type of --dest and --source: a folder's path, not an empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError('must name a folder (got an empty string)')
    return text


def source_folder(text):
    """argparse type of --source: an existing folder. The zip or CSV itself, a common
    slip, is answered with the folder to give instead."""
    folder_argument(text)
    if os.path.isfile(text):
        raise argparse.ArgumentTypeError(f'{text} is a file: give the folder holding it, '
                                         f'{os.path.dirname(text) or "."}')
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f'{text} is not a folder')
    return text


def hidden_member(name):
    """Whether a zip member is hidden, as a file manager would hide it: any part of its
    path starting with '.' (macOS's ._* resource forks among them) or macOS's
    __MACOSX/ folder."""
    return any(part.startswith('.') or part == '__MACOSX' for part in name.split('/') if part)


def run(main):
    """Call main(); turn PrepError and Ctrl-C into a one-line message and exit code."""
    utils.exit_on_user_error(
        main, interrupted='interrupted: nothing was marked as prepared; run again to start over',
        os_error=lambda err: '; nothing was marked as prepared')


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

    Only a folder that this same preparation script made (its record names the
    script) is ever replaced or removed, and only when it holds no file its record
    does not list (a file a user added there): anything else at `dest` is refused
    before any work starts. A `.partial` folder this script left unfinished (it was
    killed) is its own and is started over. A lock beside `dest` keeps a second
    preparation of it from starting. `script`: the preparation script, e.g.
    'data/prepare_folder.py', recorded in the folder it makes.
    """

    def __init__(self, dest, script):
        self.dest, self.partial = dest.rstrip('/'), dest.rstrip('/') + '.partial'
        self.script = script
        self.lock = utils.ProcessLock(self.dest + '.lock', f'preparing {self.dest}',
                                      unwritable='choose another --dest')

    def __enter__(self):
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.dest)), exist_ok=True)
        except OSError as err:
            raise PrepError(f'cannot make the folder of {self.dest} ({err.strerror}); choose '
                            f'another --dest') from None
        self.lock.__enter__()
        try:
            self.check_replaceable(self.dest)
            self.remove_unfinished()
            os.makedirs(self.partial)
            # marks it as this script's unfinished work until the real record
            prepared.write_record(self.partial, script=self.script, unfinished=True)
        except OSError as err:
            self.lock.__exit__()
            raise PrepError(f'cannot write {self.partial} ({err.strerror}); choose another '
                            f'--dest') from None
        except BaseException:
            self.lock.__exit__()
            raise
        return self.partial

    def remove_unfinished(self):
        """Start over where a killed run of this script left its `.partial` folder."""
        if not os.path.lexists(self.partial):
            return
        if (os.path.isdir(self.partial) and prepared.is_unfinished(self.partial)
                and self.made_here(self.partial)):
            print(f'Removing {self.partial}, the unfinished work of an earlier run that was '
                  f'stopped', flush=True)
            shutil.rmtree(self.partial)
            return
        self.check_replaceable(self.partial)
        if os.path.isdir(self.partial):
            shutil.rmtree(self.partial)

    def made_here(self, folder):
        """Whether this script made `folder` (a record of an older version that names no
        script counts for the Omniglot and miniImagenet scripts)."""
        try:
            maker = prepared.made_by(folder)
        except prepared.RecordError:
            return False
        return maker == self.script or (maker is None and self.script != prepared.FOLDER_SCRIPT)

    def check_replaceable(self, folder):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise PrepError(f'{folder} is a file; move it away or choose another --dest')
        if not os.path.isdir(folder) or not os.listdir(folder):
            return
        if not prepared.has_record(folder):
            raise PrepError(f'{folder} exists and was not made by {self.script} (it holds '
                            f'no {prepared.RECORD} record); move it away or choose another '
                            f'--dest. Nothing was changed')
        if not self.made_here(folder):
            try:
                maker = prepared.made_by(folder) or 'another preparation script'
            except prepared.RecordError:
                maker = 'an unknown script (its record is unreadable)'
            raise PrepError(f'{folder} was made by {maker}, not by {self.script}; move it '
                            f'away or choose another --dest. Nothing was changed')
        added = prepared.added_files(folder)
        if added:
            raise PrepError(f'{folder} holds {len(added)} files it was not prepared with '
                            f'({", ".join(added[:3])}{", ..." if len(added) > 3 else ""}); '
                            f'move them away first. Nothing was changed')

    def commit(self, **info):
        prepared.write_record(self.partial, script=self.script, **info)
        if os.path.exists(self.dest):
            shutil.rmtree(self.dest)
        os.replace(self.partial, self.dest)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                shutil.rmtree(self.partial, ignore_errors=True)
        finally:
            self.lock.__exit__()
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
