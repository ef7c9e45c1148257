"""imgbytes.py - the whole of a (mounted) disk image, for the shell tests'
Python parts: sys.path.insert(0, TESTS_DIR + "/image"); import imgbytes."""
import os


def image_bytes(path):
    """Every byte of path, read through one open (so one generation)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
