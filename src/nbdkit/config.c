/* config.c - the nbdkit plugin's parameters: key=value into rpifs_opts.
 *
 * The keys are the mount's long options (rpifs --help) named as nbdkit
 * plugins name keys: --boot-size 64M is boot-size=64M, a flag is key=BOOL
 * (--root-owner: root-owner=true, --no-ext4: ext4=false, --no-inotify:
 * inotify=false, --read-only: readonly=true). Values are checked here, as
 * the mount checks them, with a message naming the key: nbdkit then exits
 * non-zero before it listens.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include "plugin.h"

struct plugin_conf plugin_conf;

static int size_key(const char *key, const char *value, uint64_t *out)
{
	if (rpifs_parse_size(value, out) < 0) {
		nbdkit_error("%s=%s: not a size (examples: 256M, 2G, 1048576)", key, value);
		return -1;
	}
	return 0;
}

static int bool_key(const char *key, const char *value, bool *out)
{
	int b = nbdkit_parse_bool(value);

	if (b < 0) {
		nbdkit_error("%s=%s: not a boolean (true/false, on/off, 1/0)", key, value);
		return -1;
	}
	*out = b;
	return 0;
}

/* A string copied for the server's lifetime (rpifs_opts keeps pointers,
 * nbdkit's value lives for the call): into slot of plugin_conf.strs. */
static int str_key(const char *key, const char *value, unsigned slot, const char **out)
{
	char *copy;

	if (!*value) {
		nbdkit_error("%s=: empty", key);
		return -1;
	}
	copy = strdup(value);
	if (!copy) {
		nbdkit_error("%s: %s", key, strerror(errno));
		return -1;
	}
	free(plugin_conf.strs[slot]);
	plugin_conf.strs[slot] = copy;
	*out = copy;
	return 0;
}

int plugin_config(const char *key, const char *value)
{
	struct rpifs_opts *o = &plugin_conf.o;
	uint64_t v;
	char *end;

	if (!strcmp(key, "rootfs")) {
		if (plugin_conf.rootfs) {
			nbdkit_error("rootfs=%s: ROOTFS given twice", value);
			return -1;
		}
		plugin_conf.rootfs = realpath(value, NULL);
		if (!plugin_conf.rootfs) {
			nbdkit_error("rootfs=%s: %s", value, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "boot-dir"))
		return str_key(key, value, 0, &o->boot_dir);
	if (!strcmp(key, "boot-label"))
		return str_key(key, value, 1, &o->boot_label);
	if (!strcmp(key, "root-label"))
		return str_key(key, value, 2, &o->root_label);
	if (!strcmp(key, "boot-size"))
		return size_key(key, value, &o->boot_size);
	if (!strcmp(key, "root-size"))
		return size_key(key, value, &o->root_size);
	if (!strcmp(key, "size"))
		return size_key(key, value, &o->size);
	if (!strcmp(key, "align")) {
		if (size_key(key, value, &o->align) < 0)
			return -1;
		if (o->align < 4096 || o->align % 4096) {
			nbdkit_error("align=%s: must be a multiple of 4 KiB", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "free")) {
		errno = 0;
		v = strtoull(value, &end, 10);
		if (errno || end == value || *end || v > 90) {
			nbdkit_error("free=%s: a percentage from 0 to 90", value);
			return -1;
		}
		o->free_percent = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "disk-id")) {
		errno = 0;
		v = strtoull(value, &end, 16);
		if (errno || end == value || *end || v == 0 || v > UINT32_MAX) {
			nbdkit_error("disk-id=%s: a non-zero 32-bit hex number, e.g. 0x1234abcd",
				     value);
			return -1;
		}
		o->disk_id = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "label")) {
		if (rpifs_parse_label(value, &o->label) < 0) {
			nbdkit_error("label=%s: dos or gpt", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "root-owner"))
		return bool_key(key, value, &o->root_owner);
	if (!strcmp(key, "devices")) {
		free(plugin_conf.devices);
		plugin_conf.devices = nbdkit_realpath(value);
		o->devices = plugin_conf.devices;
		return plugin_conf.devices ? 0 : -1;
	}
	if (!strcmp(key, "idmap")) {
		struct plugin_conf *c = &plugin_conf;
		size_t max = sizeof(c->idmap) / sizeof(c->idmap[0]);

		if (o->nidmap == max) {
			nbdkit_error("idmap=%s: at most %zu ranges", value, max);
			return -1;
		}
		if (rpifs_parse_idmap(value, &c->idmap[o->nidmap]) < 0) {
			nbdkit_error("idmap=%s: not HOST:IMAGE:COUNT (decimal ids, COUNT > 0, "
				     "within 32 bits), e.g. 100000:0:65536", value);
			return -1;
		}
		o->idmap = c->idmap;
		o->nidmap++;
		return 0;
	}
	if (!strcmp(key, "ext4"))
		return bool_key(key, value, &o->ext4);
	if (!strcmp(key, "readonly"))
		return bool_key(key, value, &o->read_only);
	if (!strcmp(key, "inotify"))
		return bool_key(key, value, &o->watch);
	if (!strcmp(key, "overlay-reset"))
		return bool_key(key, value, &o->overlay_reset);
	if (!strcmp(key, "overlay")) {
		free(plugin_conf.overlay);
		/* The file may not exist yet: absolute, not resolved. */
		plugin_conf.overlay = nbdkit_absolute_path(value);
		return plugin_conf.overlay ? 0 : -1;
	}
	nbdkit_error("%s=%s: unknown key (nbdkit rpifs --help lists them)", key, value);
	return -1;
}

int plugin_config_complete(void)
{
	struct rpifs_opts *o = &plugin_conf.o;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	struct stat st;

	if (!plugin_conf.rootfs) {
		nbdkit_error("rootfs=ROOTFS is required (the tree to serve)");
		return -1;
	}
	if (stat(plugin_conf.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
		nbdkit_error("rootfs=%s: not a directory", plugin_conf.rootfs);
		return -1;
	}
	if (o->boot_size < 33 << 20) {
		nbdkit_error("boot-size must be at least 33M (FAT32 needs 65525 clusters)");
		return -1;
	}
	if (o->overlay_reset && !plugin_conf.overlay) {
		nbdkit_error("overlay-reset=true needs overlay=FILE");
		return -1;
	}
	if (sde && *sde) {
		long long v;
		char *end;

		errno = 0;
		v = strtoll(sde, &end, 10);
		if (errno || *end || v < 0) {
			nbdkit_error("SOURCE_DATE_EPOCH=%s: not a number of seconds", sde);
			return -1;
		}
		o->source_date_epoch = v;
	}
	o->rootfs = plugin_conf.rootfs;
	o->overlay = plugin_conf.overlay;
	return 0;
}

void plugin_config_free(void)
{
	free(plugin_conf.rootfs);
	free(plugin_conf.overlay);
	free(plugin_conf.devices);
	for (unsigned i = 0; i < sizeof(plugin_conf.strs) / sizeof(plugin_conf.strs[0]); i++)
		free(plugin_conf.strs[i]);
	memset(&plugin_conf, 0, sizeof(plugin_conf));
}
