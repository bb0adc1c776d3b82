"""What the figure scripts share: matplotlib drawing to files, and one-line errors."""
import sys

from utils import UserError


def pyplot():
    """matplotlib.pyplot without a display; a UserError when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UserError('figures need matplotlib: pip install -r requirements-plots.txt') from None
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def run(main):
    """Call a figure script's main(); a UserError ends it in one line, exit code 1."""
    try:
        main()
    except UserError as err:
        sys.exit(f'error: {err}')
