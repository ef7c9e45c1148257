/* daemon.h - detach from the terminal before the work, report after it.
 *
 * rpifs returns once disk.img is mounted, with the exit status of the mount.
 * daemon_start() forks at the very start, while the process is small and
 * has one thread: the parent only waits, then exits with the status the
 * child reports. The child scans, builds and mounts, printing any error to
 * the terminal as before, then calls daemon_ready(). A child that exits
 * before that (an error) ends the parent with the child's exit status.
 *
 * Forking late, as fuse_daemonize() does, copies the page tables of the
 * built image and makes the parent tear all of it down before the shell
 * gets its prompt back: ~2 ms of the time until the image is readable.
 */
#ifndef RPIFS_DAEMON_H
#define RPIFS_DAEMON_H

/* Fork. Returns 0 in the child, -errno if the fork failed; the parent never
 * returns. */
int daemon_start(void);
/* In the child: new session, cwd "/", stdin/stdout/stderr to /dev/null,
 * and status 0 to the waiting parent. */
void daemon_ready(void);

#endif
