"""What the figure scripts share: matplotlib drawing to files, and one-line errors."""
import os

from utils import UserError, exit_on_user_error


def pyplot():
    """matplotlib.pyplot without a display; a UserError when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UserError('figures need matplotlib: pip install -r requirements-plots.txt') from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def output_path(out):
    """The file a figure will be saved to, checked before any work: matplotlib adds .png
    to a name without a suffix (the file it writes is named), and fails only at the end
    on a format it does not know."""
    pyplot()                     # the one-line error when matplotlib is missing
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if os.path.isdir(out):
        raise UserError(f'--out={out} is a folder; give a file name, e.g. '
                        f'{os.path.join(out, "figure.png")}')
    suffix = os.path.splitext(out)[1]
    formats = FigureCanvasAgg.get_supported_filetypes()
    if not suffix:
        out += '.png'
    elif suffix[1:].lower() not in formats:
        raise UserError(f'--out={out}: matplotlib cannot write {suffix} files; use one of '
                        f'{", ".join(sorted(formats))}')
    return out


def run(main):
    """Call a figure script's main(); a UserError or a failed write ends it in one line,
    exit code 1."""
    exit_on_user_error(main, os_error=lambda err: '')
