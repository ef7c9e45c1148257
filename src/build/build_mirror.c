/* build_mirror.c - find the host's Debian archive in its apt sources. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "build.h"
#include "build_fs.h"
#include "build_mirror.h"

struct pick {
	char *best;     /* path ends in /debian: the main archive's usual name */
	char *first;    /* any other plausible archive */
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\t') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t'))
			return true;
	return false;
}

/* A suite of the archive proper: not -security/-updates/-backports. */
static bool has_plain_suite(const char *suites)
{
	char *copy = build_xstrdup(suites), *save = NULL, *s;
	bool ok = false;

	for (s = strtok_r(copy, " \t", &save); s && !ok; s = strtok_r(NULL, " \t", &save))
		ok = !strchr(s, '-') && !strchr(s, '/');
	free(copy);
	return ok;
}

static void consider(struct pick *p, const char *uri, const char *suites, const char *comps)
{
	char *u;
	size_t n;

	if (strncmp(uri, "http://", 7) && strncmp(uri, "https://", 8) &&
	    strncmp(uri, "ftp://", 6) && strncmp(uri, "file:", 5))
		return;             /* mirror+file:, cdrom:, tor+...: not for debootstrap */
	if (!has_plain_suite(suites) || !word_in(comps, "main"))
		return;
	u = build_xstrdup(uri);
	n = strlen(u);
	while (n > 1 && u[n - 1] == '/')
		u[--n] = '\0';
	if (ends_with(u, "-security")) {
		free(u);
		return;
	}
	if (ends_with(u, "/debian") && !p->best)
		p->best = u;
	else if (!p->first)
		p->first = u;
	else
		free(u);
}

/* One-line format: deb [options] URI SUITE COMPONENT... */
static void parse_list(struct pick *p, char *text)
{
	char *save = NULL, *line;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *s2 = NULL, *tok, *uri, *suite;
		char comps[512] = "";

		if (hash)
			*hash = '\0';
		tok = strtok_r(line, " \t", &s2);
		if (!tok || strcmp(tok, "deb"))
			continue;
		tok = strtok_r(NULL, " \t", &s2);
		if (tok && tok[0] == '[') {
			while (tok && !strchr(tok, ']'))
				tok = strtok_r(NULL, " \t", &s2);
			tok = tok ? strtok_r(NULL, " \t", &s2) : NULL;
		}
		uri = tok;
		suite = uri ? strtok_r(NULL, " \t", &s2) : NULL;
		if (!suite)
			continue;
		while ((tok = strtok_r(NULL, " \t", &s2))) {
			strncat(comps, " ", sizeof(comps) - strlen(comps) - 1);
			strncat(comps, tok, sizeof(comps) - strlen(comps) - 1);
		}
		consider(p, uri, suite, comps);
	}
}

/* deb822: stanzas separated by blank lines; "Field: value" with
 * continuation lines starting with a space. */
static void parse_sources(struct pick *p, char *text)
{
	char *types = NULL, *uris = NULL, *suites = NULL, *comps = NULL, **cur = NULL;
	bool enabled = true;
	char *line = text;

	for (;;) {
		char *nl = strchr(line, '\n');
		bool end = !nl;

		if (nl)
			*nl = '\0';
		if (*line && *line != '#') {
			if ((*line == ' ' || *line == '\t') && cur && *cur) {
				char *v = build_xasprintf("%s %s", *cur, line + 1);

				free(*cur);
				*cur = v;
			} else {
				char *colon = strchr(line, ':');

				cur = NULL;
				if (colon) {
					char *v = colon + 1;

					*colon = '\0';
					while (*v == ' ' || *v == '\t')
						v++;
					if (!strcasecmp(line, "Types"))
						cur = &types;
					else if (!strcasecmp(line, "URIs"))
						cur = &uris;
					else if (!strcasecmp(line, "Suites"))
						cur = &suites;
					else if (!strcasecmp(line, "Components"))
						cur = &comps;
					else if (!strcasecmp(line, "Enabled"))
						enabled = strcasecmp(v, "no") && strcasecmp(v, "false");
					if (cur) {
						free(*cur);
						*cur = build_xstrdup(v);
					}
				}
			}
		}
		if (!*line || end) {
			/* End of a stanza. */
			if (enabled && types && uris && suites && comps && word_in(types, "deb")) {
				char *save = NULL, *u, *copy = build_xstrdup(uris);

				for (u = strtok_r(copy, " \t", &save); u; u = strtok_r(NULL, " \t", &save))
					consider(p, u, suites, comps);
				free(copy);
			}
			free(types);
			free(uris);
			free(suites);
			free(comps);
			types = uris = suites = comps = NULL;
			cur = NULL;
			enabled = true;
		}
		if (end)
			break;
		line = nl + 1;
	}
}

static void read_into(struct pick *p, const char *path, bool deb822)
{
	char *text = NULL;

	if (build_fs_read(path, &text, NULL))
		return;
	if (deb822)
		parse_sources(p, text);
	else
		parse_list(p, text);
	free(text);
}

int build_mirror_default(char **url)
{
	const char *env = getenv("RPIFS_APT_DIR");
	const char *etc = env && *env ? env : "/etc/apt";
	struct pick p = { NULL, NULL };
	struct dirent **ents = NULL;
	char *path = build_xasprintf("%s/sources.list", etc);
	int n;

	read_into(&p, path, false);
	free(path);
	path = build_xasprintf("%s/sources.list.d", etc);
	n = scandir(path, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char *f = build_xasprintf("%s/%s", path, name);

		if (ends_with(name, ".list"))
			read_into(&p, f, false);
		else if (ends_with(name, ".sources"))
			read_into(&p, f, true);
		free(f);
		free(ents[i]);
	}
	free(ents);
	free(path);
	if (p.best) {
		*url = p.best;
		free(p.first);
		return 0;
	}
	if (p.first) {
		*url = p.first;
		return 0;
	}
	return -ENOENT;
}
