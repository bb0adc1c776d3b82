"""TensorFlow, imported quietly: `from tf_quiet import tf` is every module's way to it.

Before the import it sets what TensorFlow reads at import time (a value the user set
wins): quiet C++ logging, and oneDNN's CPU kernels, which TensorFlow leaves off on some
CPUs (an AVX2 one among them) where they train miniImagenet about 1.8x faster with the
same gradients to float32 round-off (`scripts/benchmark.py --env
TF_ENABLE_ONEDNN_OPTS=0` compares). GPU kernels are unaffected. Without an NVIDIA
driver, TensorFlow's C++ start-up lines (CUDA not found, cuInit failed) say nothing
useful and would sit right above this program's own messages, so they are hidden.
Graphs are built through tf.compat.v1 with v2 behaviour off.

Importing this module takes seconds: the entry points import it (through maml) only
once they know there is work to do.
"""
import contextlib
import os

NO_GPU_DRIVER = not os.path.exists('/proc/driver/nvidia/version')


@contextlib.contextmanager
def native_stderr_hidden(hide):
    """Send file descriptor 2 to /dev/null meanwhile (C++ logging bypasses Python)."""
    if not hide:
        yield
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3' if NO_GPU_DRIVER else '2')
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
    with native_stderr_hidden(NO_GPU_DRIVER):
        import tensorflow.compat.v1 as tensorflow
    tensorflow.get_logger().setLevel('ERROR')
    tensorflow.disable_v2_behavior()
    return tensorflow


tf = _import()


def session(threads):
    """A Session with (inter-op, intra-op) thread counts (0: TensorFlow decides)."""
    inter, intra = threads
    return tf.Session(config=tf.ConfigProto(inter_op_parallelism_threads=inter,
                                            intra_op_parallelism_threads=intra))


