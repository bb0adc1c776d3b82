"""Small pieces every part of the project shares: UserError and the one way entry
points turn it into a line, a file written whole or not at all, a lock naming the
process that holds it, and stop signals turned into a flag. No TensorFlow here."""
import contextlib
import os
import signal
import sys


class UserError(Exception):
    """A problem the user can fix (missing data, bad setting): printed as one line."""


def process_start(pid):
    """When process `pid` started (clock ticks since boot), or None where /proc cannot
    tell: with its pid, it names a process even after the pid is reused."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid, started=None):
    """Whether process `pid` runs (and, when `started` is given and /proc can tell, is
    the process that started then, not a later one given the same pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_start(pid)
    return started is None or now is None or now == started


class ProcessLock:
    """A file naming the process that holds it (pid and start time), so no second
    process does the same work at the same time. A lock whose process no longer runs
    (killed, or its pid since reused) is taken over. `doing`: the lock's work as the
    refusal names it, e.g. 'training /x'; `unwritable`: the advice when the lock's folder
    cannot be written at all (read-only, no permission)."""

    def __init__(self, path, doing, unwritable='choose another folder'):
        self.path, self.doing, self.unwritable = path, doing, unwritable

    def __enter__(self):
        try:
            self.take()
        except OSError as err:
            if not os.path.lexists(self.path):     # no lock: its folder cannot be written
                folder = os.path.dirname(self.path) or '.'
                raise UserError(f'cannot write in {folder} ({err.strerror}); '
                                f'{self.unwritable}') from None
            raise UserError(f'cannot take the lock {self.path} ({err.strerror}); if no process '
                            f'is {self.doing}, delete it') from None
        return self

    def holder(self):
        """(pid, start time or None) written in the lock, or None when it is unreadable."""
        with open(self.path, errors='replace') as f:
            fields = f.read().split()
        if not fields or not all(v.isdigit() for v in fields[:2]):
            return None
        return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)

    def take(self):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = self.holder()
            if holder and holder[0] != os.getpid() and process_alive(*holder):
                raise UserError(f'process {holder[0]} is {self.doing}; wait for it or stop it '
                                f'(its lock is {self.path})') from None
            os.remove(self.path)    # left by a process that was killed, or damaged
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, f'{os.getpid()} {process_start(os.getpid()) or ""}'.strip().encode())
        os.close(fd)

    def __exit__(self, *exc):
        if os.path.exists(self.path):
            os.remove(self.path)
        return False


def write_atomically(path, data):
    """Write a file whole or not at all (a temporary file beside it, then a rename), so
    a full disk or an interruption never leaves it half written."""
    tmp = f'{path}.tmp{os.getpid()}'
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        kept = 'it was left as it was' if os.path.lexists(path) else 'nothing was written'
        raise UserError(f'cannot write {path} ({err.strerror or err}); {kept}') from None




def exit_on_user_error(work, interrupted='interrupted: nothing was written', os_error=None):
    """Run work(); a UserError ends the program with its one line (exit code 1), Ctrl-C
    with the line `interrupted` (exit code 130): no traceback for what the user can fix.
    os_error: for work that writes files, a function of an OSError giving what to add
    to its line (a read-only or full disk, a folder that vanished); without it an
    OSError is a bug and shows its traceback. Every entry point runs through this."""
    try:
        return work()
    except UserError as err:
        sys.exit(f'error: {err}')
    except OSError as err:
        if os_error is None:
            raise
        sys.exit(f'error: cannot write or read {err.filename or "a file"} '
                 f'({err.strerror or err}){os_error(err)}')
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        sys.exit(130)


def first_line(err):
    """The line of an error that says what went wrong. A TensorFlow graph error starts
    with 'Graph execution error:' and names the cause just above its '[[node]]' line."""
    lines = [line.strip() for line in (getattr(err, 'message', None) or str(err)).splitlines()]
    lines = [line for line in lines if line]
    for before, line in zip(lines, lines[1:]):
        if line.startswith('[['):
            return before
    return lines[0] if lines else type(err).__name__


class StopRequest:
    """Turns SIGINT/SIGTERM (and SIGUSR2, SLURM's warning before a time limit or a
    preemption) into a flag the loop checks, so it can save and exit. (A flag, not
    Python's KeyboardInterrupt, which is lost when it lands in a finalizer or callback.)
    `notice`: what to print when the first signal arrives."""

    def __init__(self, notice=''):
        self.requested = False
        self.notice = notice
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            if signum == signal.SIGINT:     # a second Ctrl-C: give up at once
                raise KeyboardInterrupt
            return                          # (a scheduler's repeated signal: go on saving)
        self.requested = True
        if self.notice:
            print(f'\n{self.notice}', flush=True)
