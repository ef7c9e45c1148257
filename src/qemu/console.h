/* console.h - the guest's two serial ports on the terminal.
 *
 * raspi3b has two UARTs: qemu's serial0 is the PL011 (ttyAMA0), serial1 the
 * mini UART (ttyS1; the mainline device tree's console when Bluetooth has
 * the PL011, where Debian's getty waits). One of them gets the terminal's
 * input: the port of the kernel's console (the last console=ttyAMA* or ttyS*
 * on the command line), on a stdio mux with qemu's monitor (Ctrl-A C), as
 * -nographic would set it up. The other port's output is copied to stdout
 * too, through a FIFO pair (qemu's "pipe:" backend): a qemu mux gives the
 * input to whichever device attached last, so both ports on one mux would
 * send the keyboard to the mini UART whatever the guest uses.
 */
#ifndef RPIFS_QEMU_CONSOLE_H
#define RPIFS_QEMU_CONSOLE_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct qemu_console {
	int input;                  /* 0 or 1: the serial port on the terminal */
	char dir[64];               /* private directory of the FIFO pair */
	char pipe_arg[PATH_MAX];    /* "pipe:DIR/serialN" for the other port */
	int out_fd;                 /* the other port's output (read end), or -1 */
};

/* Which serial port the kernel's console is on, given its command line:
 * 0 (ttyAMA*), 1 (ttyS*), or -1 when no console= names either. */
int console_port(const char *cmdline);

/* Prepare the FIFO pair for the port that is not INPUT (dry: names only).
 * 0 or -errno, with a message. */
int console_setup(struct qemu_console *c, int input, bool dry);
/* Add the qemu arguments (-chardev, -serial x2, -mon) at argv[*n]. */
void console_args(struct qemu_console *c, char **argv, int *n);
/* After qemu started: open the other port's output. */
int console_open(struct qemu_console *c);
/* Copy qemu's stdout (qemu_out, or -1 when it goes to the terminal itself)
 * and the other port's output to stdout until both end or qemu is stopped.
 * With UNTIL, stop qemu (SIGTERM to pid) once either prints it: true then.
 * *stop is polled after each interruption (a timeout's SIGALRM). */
bool console_pump(struct qemu_console *c, int qemu_out, pid_t pid, const char *until,
		  volatile sig_atomic_t *stop);
/* Close and remove the FIFOs. */
void console_free(struct qemu_console *c);

#endif
