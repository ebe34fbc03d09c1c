/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* husk run: shared between the option/flow part and the stdio loop. */
#ifndef HUSK_TOOL_RUN_H
#define HUSK_TOOL_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "husk/husk.h"

/* husk run's own failures (not the container's), as docker run's 125. */
#define RUN_EXIT_FAILURE 125

struct run_io {
	struct husk_sandbox *sb;
	struct husk_process *proc;
	struct husk_stdio stdio;
	bool tty;		/* the process has a terminal */
	int signal_fd;		/* SIGINT/SIGTERM/SIGHUP/SIGWINCH, blocked */
	bool debug;		/* follow the guest console on stderr */
	int console_fd;		/* --debug: the console log, read as it grows */
	int64_t exited_ms;	/* when the exit became known */
};

/*
 * Relay stdio, forward signals and window changes until the process's exit
 * is known and its output drained.  Returns 0 with *status, or a negative
 * errno after printing why (the VM died, the agent went away).
 */
int run_io_loop(struct run_io *io, int *status);

/* Print why the VM is gone (QEMU's exit) in one line; false while it runs. */
bool run_report_vm_exit(struct husk_sandbox *sb);

/* Copy what the console log gained since the last call to stderr. */
void run_io_console_follow(struct run_io *io);

/* CLOCK_MONOTONIC in ms, the clock of struct husk_sandbox_timings. */
int64_t run_now_ms(void);

/* -t on a terminal: raw mode now, restored by run_tty_restore() (idempotent). */
void run_tty_raw(void);
void run_tty_restore(void);
/* The size of our terminal, false when stdin/stdout is none. */
bool run_tty_size(unsigned short *rows, unsigned short *cols);

#endif
