/* build_data.c - locate rpifs's shipped data files. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "build.h"
#include "build_data.h"
#include "build_paths.h"

/* Is the running executable below the meson build root? Then the source
 * tree's data/ is the matching version, not whatever is installed. */
static bool running_from_build_tree(void)
{
	char *exe = realpath("/proc/self/exe", NULL), *root = realpath(RPIFS_BUILD_ROOT, NULL);
	bool in = false;

	if (exe && root) {
		size_t n = strlen(root);

		in = !strncmp(exe, root, n) && exe[n] == '/';
	}
	free(exe);
	free(root);
	return in;
}

int build_data_find(const char *name, char **path, char **searched)
{
	const char *env = getenv("RPIFS_DATADIR");
	const char *dirs[3];
	size_t n = 0;
	char *list = NULL;

	*path = NULL;
	if (searched)
		*searched = NULL;
	if (env && *env)
		dirs[n++] = env;
	if (running_from_build_tree()) {
		dirs[n++] = RPIFS_SRC_DATADIR;
		dirs[n++] = RPIFS_INSTALL_DATADIR;
	} else {
		dirs[n++] = RPIFS_INSTALL_DATADIR;
		dirs[n++] = RPIFS_SRC_DATADIR;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = build_xasprintf("%s/%s", dirs[i], name);
		char *l;

		if (access(p, R_OK) == 0) {
			*path = p;
			free(list);
			return 0;
		}
		l = list ? build_xasprintf("%s, %s", list, dirs[i]) : build_xstrdup(dirs[i]);
		free(list);
		list = l;
		free(p);
	}
	if (searched)
		*searched = list;
	else
		free(list);
	return -ENOENT;
}
