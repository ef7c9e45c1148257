/* build_board.c - parse board profiles (data/boards/NAME.conf). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "build_board.h"
#include "build_data.h"
#include "build_fs.h"
#include "log.h"

/* "rpi02w rpi3 rpi4" from the directory holding path. */
static char *known_boards(const char *dir)
{
	struct dirent **ents = NULL;
	char *list = build_xstrdup("");
	int n = dir ? scandir(dir, &ents, NULL, alphasort) : -1;

	for (int i = 0; i < n; i++) {
		size_t len = strlen(ents[i]->d_name);

		if (len > 5 && !strcmp(ents[i]->d_name + len - 5, ".conf")) {
			char *l = build_xasprintf("%s%s%.*s", list, *list ? " " : "",
						  (int)(len - 5), ents[i]->d_name);

			free(list);
			list = l;
		}
		free(ents[i]);
	}
	free(ents);
	return list;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The keys of a board whose boot ROM reads its EEPROM and whose kernel is
 * not mainline's (the Pi 5): eeprom=, kernel_name=, kernel_src=, label=.
 * 1: taken, 0: not one of these, -EINVAL: bad value (reported). */
static int parse_boot_key(struct board *b, const char *path, int lineno, const char *key,
			  const char *val)
{
	if (!strcmp(key, "eeprom")) {
		if (strcmp(val, "yes") && strcmp(val, "no")) {
			log_error("%s:%d: eeprom=%s: yes or no", path, lineno, val);
			return -EINVAL;
		}
		b->eeprom = !strcmp(val, "yes");
	} else if (!strcmp(key, "label")) {
		if (strcmp(val, "gpt") && strcmp(val, "mbr")) {
			log_error("%s:%d: label=%s: gpt or mbr", path, lineno, val);
			return -EINVAL;
		}
		b->gpt = !strcmp(val, "gpt");
	} else if (!strcmp(key, "kernel_name")) {
		/* A file name on the boot partition, nothing else. */
		if (!*val || strchr(val, '/') || val[0] == '.') {
			log_error("%s:%d: kernel_name=%s: a file name (kernel_2712.img)", path,
				  lineno, val);
			return -EINVAL;
		}
		free(b->kernel_name);
		b->kernel_name = build_xstrdup(val);
	} else if (!strcmp(key, "kernel_src")) {
		free(b->kernel_src);
		b->kernel_src = build_xstrdup(val);
	} else {
		return 0;
	}
	return 1;
}

static int parse(struct board *b, const char *path, char *text)
{
	int r;

	char *save = NULL, *line;
	int lineno = 0;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *key, *val;

		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			log_error("%s:%d: expected key=value", path, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		if (!strcmp(key, "description")) {
			free(b->description);
			b->description = build_xstrdup(val);
		} else if (!strcmp(key, "dtb")) {
			free(b->dtb);
			b->dtb = build_xstrdup(val);
		} else if (!strcmp(key, "kernel_config")) {
			free(b->kernel_config);
			b->kernel_config = build_xstrdup(val);
		} else if (!strcmp(key, "console")) {
			free(b->console);
			b->console = build_xstrdup(val);
		} else if (!strcmp(key, "firmware")) {
			char *s2 = NULL, *f;

			for (f = strtok_r(val, " \t", &s2); f; f = strtok_r(NULL, " \t", &s2)) {
				if (b->n_firmware == BOARD_MAX_FILES || strchr(f, '/') ||
				    !strcmp(f, "..")) {
					log_error("%s:%d: bad firmware list", path, lineno);
					return -EINVAL;
				}
				b->firmware[b->n_firmware++] = build_xstrdup(f);
			}
		} else if (!strcmp(key, "config")) {
			if (b->n_config == BOARD_MAX_CONFIG) {
				log_error("%s:%d: too many config lines", path, lineno);
				return -EINVAL;
			}
			b->config[b->n_config++] = build_xstrdup(val);
		} else if ((r = parse_boot_key(b, path, lineno, key, val)) != 0) {
			if (r < 0)
				return r;
		} else {
			log_error("%s:%d: unknown key '%s'", path, lineno, key);
			return -EINVAL;
		}
	}
	/* eeprom=yes: the boot ROM loads its firmware from the EEPROM, so the
	 * card may need none (the Pi 5). */
	if ((!b->n_firmware && !b->eeprom) || !b->dtb || !b->console) {
		log_error("%s: a profile needs firmware= (or eeprom=yes), dtb= and console=", path);
		return -EINVAL;
	}
	return 0;
}

int build_board_load(const char *name, struct board *b)
{
	char *rel = NULL, *path = NULL, *searched = NULL, *text = NULL;
	int ret;

	memset(b, 0, sizeof(*b));
	if (!name[0] || strchr(name, '/') || name[0] == '.') {
		ret = -ENOENT;
		log_error("--board %s: not a board name", name);
		goto out;
	}
	rel = build_xasprintf("boards/%s.conf", name);
	ret = build_data_find(rel, &path, &searched);
	if (ret) {
		char *probe = NULL, *dir = NULL, *known;

		if (!build_data_find("boards/rpi3.conf", &probe, NULL))
			dir = build_xasprintf("%.*s", (int)(strlen(probe) - strlen("/rpi3.conf")),
					      probe);
		known = known_boards(dir);
		if (*known)
			log_error("--board %s: unknown board (known: %s)", name, known);
		else
			log_error("board profiles not found (looked in %s): set RPIFS_DATADIR to"
				  " rpifs's data directory", searched);
		free(known);
		free(dir);
		free(probe);
		goto out;
	}
	ret = build_fs_read(path, &text, NULL);
	if (ret) {
		log_error("%s: %s", path, strerror(-ret));
		goto out;
	}
	b->name = build_xstrdup(name);
	ret = parse(b, path, text);
out:
	if (ret)
		build_board_free(b);
	free(text);
	free(searched);
	free(path);
	free(rel);
	return ret;
}

void build_board_free(struct board *b)
{
	free(b->name);
	free(b->description);
	free(b->dtb);
	free(b->console);
	free(b->kernel_name);
	free(b->kernel_src);
	free(b->kernel_config);
	for (int i = 0; i < b->n_firmware; i++)
		free(b->firmware[i]);
	for (int i = 0; i < b->n_config; i++)
		free(b->config[i]);
	memset(b, 0, sizeof(*b));
}
