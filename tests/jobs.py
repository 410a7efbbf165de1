"""How the tests start a program that they stop as a terminal's Ctrl-C would."""

import signal


def interruptible():
    """In the child (preexec_fn): SIGINT at its default, as a shell starts its foreground jobs. A
    suite started in the background from a script inherits SIGINT ignored, and a Ctrl-C the test
    sends would then never reach a program that sets no handler of its own (make, sh, and a
    Python program, which keeps an ignored SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
