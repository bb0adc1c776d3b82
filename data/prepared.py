"""The record a preparation script leaves in each folder it builds.

`.prepared` lists every file of the verified folder (relative path, size, CRC-32).
It serves three readers: a rerun of the script, which rebuilds a folder only when the
folder no longer matches it; main.py, which refuses data that differs from what was
prepared (one missing Omniglot character would otherwise reshuffle every split); and
the scripts' own output step, which only ever replaces a folder holding a record,
that is, one a preparation script made.
"""
import json
import os
import zlib

RECORD = '.prepared'


class RecordError(Exception):
    """The record is absent or unreadable."""


def visible_files(folder):
    """Relative paths of the files under `folder`, hidden files and folders left out."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        rel = os.path.relpath(top, folder)
        found += [os.path.normpath(os.path.join(rel, f))
                  for f in sorted(files) if not f.startswith('.')]
    return found


def crc32(path):
    with open(path, 'rb') as f:
        return zlib.crc32(f.read())


def scan(folder, checksums):
    """{relative path: [size, CRC-32 or None]} of the visible files under `folder`."""
    return {rel: [os.path.getsize(os.path.join(folder, rel)),
                  crc32(os.path.join(folder, rel)) if checksums else None]
            for rel in visible_files(folder)}


def write_record(folder, **info):
    """Record the folder as it is now (call once it is verified), with `info` about
    its contents (e.g. image_size and channels) for its readers."""
    with open(os.path.join(folder, RECORD), 'w') as f:
        json.dump({'files': scan(folder, checksums=True), **info}, f, separators=(',', ':'))


def has_record(folder):
    return os.path.isfile(os.path.join(folder, RECORD))


def read_record(folder):
    """{relative path: [size, CRC-32]} as recorded."""
    return read_whole_record(folder)['files']


def read_info(folder):
    """What write_record was told about the folder besides its files ({} if nothing)."""
    return {k: v for k, v in read_whole_record(folder).items() if k != 'files'}


def read_whole_record(folder):
    path = os.path.join(folder, RECORD)
    try:
        with open(path) as f:
            record = json.load(f)
        if not isinstance(record, dict) or not isinstance(record.get('files'), dict):
            raise ValueError('no file list')
    except FileNotFoundError:
        raise RecordError(f'{folder} holds no {RECORD} record') from None
    except (OSError, ValueError, TypeError) as err:
        raise RecordError(f'{path} is unreadable or from an older version ({err})') from None
    return record


def added_files(folder):
    """The visible files under `folder` that its record does not list (a user's own)."""
    return sorted(set(visible_files(folder)) - set(read_record(folder)))


def differences(folder, checksums=False):
    """What differs between `folder` and its record, as short phrases ([] when nothing).
    Without checksums only names and sizes are compared (fast enough for every start)."""
    recorded = read_record(folder)
    now = scan(folder, checksums)
    missing = sorted(set(recorded) - set(now))
    added = sorted(set(now) - set(recorded))
    changed = sorted(p for p in set(now) & set(recorded)
                     if now[p][0] != recorded[p][0] or (checksums and now[p][1] != recorded[p][1]))
    kinds = (('missing', missing), ('added', added), ('changed', changed))
    return [f'{len(paths)} {what} ({", ".join(paths[:2])}{", ..." if len(paths) > 2 else ""})'
            for what, paths in kinds if paths]


def matches(folder, checksums=True):
    """Whether `folder` holds a readable record that it still matches."""
    try:
        return not differences(folder, checksums)
    except RecordError:
        return False
