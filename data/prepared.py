"""The record a preparation script leaves in each folder it builds.

`.prepared` lists every file of the verified folder (relative path, size, CRC-32).
It serves three readers: a rerun of the script, which rebuilds a folder only when the
folder no longer matches it; main.py, which refuses data that differs from what was
prepared (one missing Omniglot character would otherwise reshuffle every split); and
the scripts' own output step, which only ever replaces a folder holding a record,
that is, one a preparation script made.
"""
import hashlib
import json
import os
import zlib

RECORD = '.prepared'
FOLDER_SCRIPT = 'data/prepare_folder.py'


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


def made_by(folder):
    """The script that made `folder`, as its record names it. Records written before
    they named their script are told apart by what they hold: only the folder script
    records an image size; the Omniglot and miniImagenet scripts recorded nothing
    else (None: one of those two)."""
    info = read_info(folder)
    if 'script' in info:
        return info['script']
    return FOLDER_SCRIPT if 'image_size' in info else None


def is_unfinished(folder):
    """Whether `folder` is a preparation's own unfinished output (its `.partial`
    folder, left by a preparation that was killed): marked so from its start, or,
    before the mark existed, holding the empty record it started with."""
    try:
        record = read_whole_record(folder)
    except RecordError:
        return False
    return bool(record.get('unfinished')) or not record['files']


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


def differences(folder, checksums=False, recorded=None):
    """What differs between `folder` and its record (`recorded`, when already read), as
    short phrases ([] when nothing). Without checksums only names and sizes are compared
    (main.py compares the contents as it reads them: ContentCheck)."""
    recorded = read_record(folder) if recorded is None else recorded
    now = scan(folder, checksums)
    missing = sorted(set(recorded) - set(now))
    added = sorted(set(now) - set(recorded))
    changed = sorted(p for p in set(now) & set(recorded)
                     if now[p][0] != recorded[p][0] or (checksums and now[p][1] != recorded[p][1]))
    kinds = (('missing', missing), ('added', added), ('changed', changed))
    return [counted(what, paths) for what, paths in kinds if paths]


def counted(what, paths):
    """'3 changed (a, b, ...)': how many files, and the first ones."""
    return f'{len(paths)} {what} ({", ".join(paths[:2])}{", ..." if len(paths) > 2 else ""})'


class ContentCheck:
    """The bytes of each file a loader reads, compared with the record's checksum as they
    are read: a prepared image replaced by another of the same size is found at no
    extra reading. `files`: the record's file list (None: no record, nothing to check)."""

    def __init__(self, folder, files=None):
        self.folder, self.files, self.changed = folder, files, []

    def read(self, path):
        with open(path, 'rb') as f:
            data = f.read()
        if self.files is not None:
            entry = self.files.get(os.path.relpath(path, self.folder))
            if entry and entry[1] is not None and zlib.crc32(data) != entry[1]:
                self.changed.append(os.path.relpath(path, self.folder))
        return data

    def differences(self):
        return [counted('changed', self.changed)] if self.changed else []


def matches(folder, checksums=True):
    """Whether `folder` holds a readable record that it still matches."""
    try:
        return not differences(folder, checksums)
    except RecordError:
        return False


def class_digests(folder, depth, prefix=''):
    """{class: digest of its files} of the classes `depth` folders down in `folder`
    (prefix + their relative path): from the record's names, sizes and checksums, or
    where there is no record, from the files' names and sizes. What a run records as the
    identity of the data it was trained on."""
    try:
        files = read_record(folder)
    except RecordError:
        files = scan(folder, checksums=False)
    grouped = {}
    for path, entry in files.items():
        parts = path.split(os.sep)
        if len(parts) > depth:
            grouped.setdefault('/'.join(parts[:depth]), []).append([parts[depth:], entry])
    return {prefix + name: hashlib.sha1(json.dumps(sorted(entries)).encode()).hexdigest()[:16]
            for name, entries in grouped.items()}


def digest_differences(recorded, now):
    """What differs between two class_digests, as short phrases ([] when nothing)."""
    added = sorted(set(now) - set(recorded))
    missing = sorted(set(recorded) - set(now))
    changed = sorted(k for k in set(now) & set(recorded) if now[k] != recorded[k])
    kinds = (('classes added', added), ('classes missing', missing),
             ('classes changed', changed))
    return [counted(what, names) for what, names in kinds if names]
