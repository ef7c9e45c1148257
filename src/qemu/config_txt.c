/* config_txt.c - config.txt as the firmware reads it (see config_txt.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "config_txt.h"
#include "log.h"

/* Every model filter the firmware knows: a section named by one of these
 * applies only to the boards it names. */
static bool is_model_filter(const char *f)
{
	static const char *const all[] = {
		"pi1", "pi2", "pi3", "pi3+", "pi4", "pi400", "pi5", "pi500", "pi0",
		"pi0w", "pi02", "cm1", "cm3", "cm3+", "cm4", "cm4s", "cm5", NULL,
	};

	for (const char *const *m = all; *m; m++)
		if (!strcmp(f, *m))
			return true;
	return false;
}

struct parse {
	const char *const *models;
	struct config_txt *c;
	bool model_ok;   /* the last model filter (or [all]) names this board */
	bool other_ok;   /* the other filters since the last [all] */
};

/* A later line of a key replaces an earlier one, as for the firmware (its
 * settings are one table, each line an assignment). */
static void set(char *dst, const char *v)
{
	snprintf(dst, CONFIG_TXT_VALUE, "%s", v);
}

static void section(struct parse *p, const char *path, unsigned line, char *f)
{
	if (!strcmp(f, "all")) {
		p->model_ok = p->other_ok = true;
	} else if (!strcmp(f, "none")) {
		p->model_ok = false;
	} else if (is_model_filter(f)) {
		p->model_ok = false;
		for (const char *const *m = p->models; *m; m++)
			if (!strcmp(f, *m))
				p->model_ok = true;
	} else if (!strcmp(f, "tryboot")) {
		p->other_ok = false;
	} else {
		log_warn("%s:%u: [%s] cannot be decided under qemu: its settings are used",
			 path, line, f);
	}
}

static int parse_file(struct parse *p, const char *path, int depth)
{
	char line[4096];
	unsigned n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *s = line + strspn(line, " \t"), *v, *e;

		n++;
		s[strcspn(s, "\r\n#")] = '\0';
		for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t'); )
			*--e = '\0';
		if (!*s)
			continue;
		if (*s == '[') {
			e = strchr(s, ']');
			if (!e) {
				log_warn("%s:%u: '%s': a section without ']', ignored", path, n, s);
				continue;
			}
			*e = '\0';
			section(p, path, n, s + 1);
			continue;
		}
		if (!p->model_ok || !p->other_ok)
			continue;
		/* "initramfs FILE [followkernel|ADDRESS]" and "include FILE": words. */
		if (!strncmp(s, "initramfs", 9) && (s[9] == ' ' || s[9] == '\t')) {
			v = s + 9 + strspn(s + 9, " \t");
			v[strcspn(v, " \t")] = '\0';
			set(p->c->initramfs, v);
			continue;
		}
		if (!strncmp(s, "include", 7) && (s[7] == ' ' || s[7] == '\t')) {
			char inc[4096];
			const char *slash = strrchr(path, '/');
			int ret;

			v = s + 7 + strspn(s + 7, " \t");
			snprintf(inc, sizeof(inc), "%.*s%s", slash ? (int)(slash - path + 1) : 0,
				 path, v);
			if (depth >= 8) {
				log_warn("%s:%u: include %s: more than 8 levels, ignored", path, n, v);
				continue;
			}
			ret = parse_file(p, inc, depth + 1);
			if (ret < 0)
				log_warn("%s:%u: include %s: %s (the firmware skips it too)",
					 path, n, v, strerror(-ret));
			continue;
		}
		v = strchr(s, '=');
		if (!v)
			continue;   /* not a setting rpifs qemu needs */
		*v++ = '\0';
		for (e = v - 1; e > s && (e[-1] == ' ' || e[-1] == '\t'); )
			*--e = '\0';
		v += strspn(v, " \t");
		if (!strcmp(s, "kernel"))
			set(p->c->kernel, v);
		else if (!strcmp(s, "ramfsfile")) {
			/* "a,b": the firmware concatenates them; qemu takes one. */
			char *more = strchr(v, ',');

			if (more) {
				*more++ = '\0';
				log_warn("%s:%u: ramfsfile=: qemu loads only the first file (%s), "
					 "not %s", path, n, v, more);
			}
			set(p->c->initramfs, v);
		}
		else if (!strcmp(s, "device_tree"))
			set(p->c->device_tree, v);
		else if (!strcmp(s, "os_prefix"))
			set(p->c->os_prefix, v);
		else if (!strcmp(s, "cmdline"))
			set(p->c->cmdline, v);
		else if (!strcmp(s, "dtoverlay") || !strcmp(s, "dtparam"))
			/* The firmware merges these into the device tree; qemu
			 * gets the base .dtb as it is. */
			log_warn("%s:%u: %s=%s is not applied under qemu (the firmware "
				 "would merge it into the device tree)", path, n, s, v);
		else if (!strcmp(s, "arm_64bit"))
			p->c->arm_64bit = strcmp(v, "0") != 0;
	}
	fclose(f);
	return 0;
}

int config_txt_read(const char *path, const char *const *models, struct config_txt *c)
{
	struct parse p = { .models = models, .c = c, .model_ok = true, .other_ok = true };

	memset(c, 0, sizeof(*c));
	c->arm_64bit = -1;
	return parse_file(&p, path, 0);
}
