/* cli_exec.c - run a program installed next to this one (`rpifs build`
 * runs rpifs-build, `rpifs flash` and `rpifs export` run rpifs-flash): the
 * mount itself does not load libarchive and the libraries it brings. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "log.h"

int cli_exec_sibling(const char *prog, const char *what, char **argv)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0 || (size_t)n + strlen(prog) + 1 >= sizeof(self)) {
		log_error("%s: cannot find this program (/proc/self/exe: %s)", what,
			  n < 0 ? strerror(errno) : "path too long");
		return 1;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	strcpy(slash ? slash + 1 : self, prog);
	argv[0] = self;
	execv(self, argv);
	log_error("%s: cannot run %s: %s (rpifs %s runs it; install it next to rpifs)",
		  what, self, strerror(errno), what);
	return 1;
}
