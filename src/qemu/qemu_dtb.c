/* qemu_dtb.c - the device tree as qemu's raspi machine needs it.
 *
 * qemu's raspi4b puts its SD card on the Arasan SDHCI (mmc@7e300000), which
 * the Pi 4's mainline device tree gives to the Wi-Fi with an mmc-pwrseq
 * whose reset line is on the firmware's GPIO expander; qemu's firmware does
 * not answer the expander, so the controller never probes and the kernel
 * waits for its root forever (tests/boot/boot_rpi4.sh shows both). The
 * copy passed to qemu lacks that one property: its FDT_PROP record is
 * overwritten with FDT_NOP tokens, which every reader skips, so no offset
 * or size in the blob changes. The tree's own file is never written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "qemu_dtb.h"

enum { FDT_MAGIC = 0xd00dfeed, FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3,
       FDT_NOP = 4, FDT_END = 9, DTB_MAX = 4 << 20 };

/* The flattened device tree header (devicetree specification 5.2), all
 * fields big-endian. */
struct fdt_header {
	uint32_t magic;              /* 0x00 */
	uint32_t totalsize;          /* 0x04 */
	uint32_t off_dt_struct;      /* 0x08 */
	uint32_t off_dt_strings;     /* 0x0c */
	uint32_t off_mem_rsvmap;     /* 0x10 */
	uint32_t version;            /* 0x14 */
	uint32_t last_comp_version;  /* 0x18 */
	uint32_t boot_cpuid_phys;    /* 0x1c */
	uint32_t size_dt_strings;    /* 0x20 */
	uint32_t size_dt_struct;     /* 0x24 */
} __attribute__((packed));
_Static_assert(sizeof(struct fdt_header) == 40, "FDT header v17 is 40 bytes");

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Offset in B of PROP in the node at PATH ("/soc/mmc@7e300000"), 0 when
 * absent, -EINVAL when the structure block is malformed. *END: the
 * offset after its record. */
static long find_prop(unsigned char *b, size_t size, const char *path, const char *prop,
		      size_t *end)
{
	const struct fdt_header *h = (const void *)b;
	size_t off = be32((const unsigned char *)&h->off_dt_struct);
	size_t stop = off + be32((const unsigned char *)&h->size_dt_struct);
	size_t str = be32((const unsigned char *)&h->off_dt_strings);
	size_t strsz = be32((const unsigned char *)&h->size_dt_strings);
	char cur[1024] = "";
	size_t curlen = 0;
	int depth = 0;

	if (stop > size || str + strsz > size || off % 4)
		return -EINVAL;
	while (off + 4 <= stop) {
		uint32_t tok = be32(b + off);
		size_t at = off;

		off += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)b + off;
			size_t n = strnlen(name, stop - off);

			if (off + n >= stop)
				return -EINVAL;
			off = (off + n + 1 + 3) & ~(size_t)3;
			if (depth++ == 0)
				continue;               /* the root: "" */
			if (curlen + 1 + n >= sizeof(cur))
				return -EINVAL;
			cur[curlen++] = '/';
			memcpy(cur + curlen, name, n);
			curlen += n;
			cur[curlen] = '\0';
		} else if (tok == FDT_END_NODE) {
			if (--depth < 0)
				return -EINVAL;
			while (curlen && cur[curlen - 1] != '/')
				curlen--;
			if (curlen)
				curlen--;
			cur[curlen] = '\0';
		} else if (tok == FDT_PROP) {
			uint32_t len, nameoff;

			if (off + 8 > stop)
				return -EINVAL;
			len = be32(b + off);
			nameoff = be32(b + off + 4);
			off += 8;
			if (len > stop - off || nameoff >= strsz)
				return -EINVAL;
			off = (off + len + 3) & ~(size_t)3;
			if (!strcmp(cur, path) && strnlen((const char *)b + str + nameoff,
							  strsz - nameoff) == strlen(prop) &&
			    !memcmp(b + str + nameoff, prop, strlen(prop))) {
				*end = off;
				return (long)at;
			}
		} else if (tok == FDT_END) {
			return 0;
		} else if (tok != FDT_NOP) {
			return -EINVAL;
		}
	}
	return -EINVAL;
}

int qemu_dtb_fixup(const struct qemu_board *qb, const char *dtb, char *out, size_t len)
{
	unsigned char *b = NULL;
	struct stat st;
	size_t end = 0;
	long at;
	int fd = -1, ret = 0;

	out[0] = '\0';
	if (!qb->dtb_node)
		return 0;
	fd = open(dtb, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("qemu: %s: %s", dtb, strerror(-ret));
		goto out;
	}
	if (st.st_size < (off_t)sizeof(struct fdt_header) || st.st_size > DTB_MAX) {
		ret = -EINVAL;
		log_error("qemu: %s: %lld bytes: not a device tree blob", dtb, (long long)st.st_size);
		goto out;
	}
	b = malloc((size_t)st.st_size);
	if (!b || pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
		ret = b ? -EIO : -ENOMEM;
		log_error("qemu: reading %s: %s", dtb, strerror(-ret));
		goto out;
	}
	close(fd);
	fd = -1;
	if (be32(b) != FDT_MAGIC || be32(b + 4) > (uint32_t)st.st_size) {
		ret = -EINVAL;
		log_error("qemu: %s: not a device tree blob (no FDT magic, or truncated)", dtb);
		goto out;
	}
	at = find_prop(b, be32(b + 4), qb->dtb_node, qb->dtb_prop, &end);
	if (at < 0) {
		ret = (int)at;
		log_error("qemu: %s: malformed device tree structure", dtb);
		goto out;
	}
	if (at == 0)
		goto out;               /* already without it: pass the file as it is */
	for (size_t o = (size_t)at; o < end; o += 4) {
		b[o] = b[o + 1] = b[o + 2] = 0;
		b[o + 3] = FDT_NOP;
	}
	snprintf(out, len, "/tmp/rpifs-dtb.XXXXXX");
	fd = mkostemp(out, O_CLOEXEC);
	if (fd < 0 || write(fd, b, (size_t)st.st_size) != st.st_size) {
		ret = fd < 0 ? -errno : -EIO;
		log_error("qemu: writing qemu's copy of %s: %s", dtb, strerror(-ret));
		if (fd >= 0)
			unlink(out);
		out[0] = '\0';
		goto out;
	}
	log_info("qemu: passing %s without %s in %s (%s): qemu's firmware has no GPIO"
		 " expander, and the SD card's controller would wait for it forever"
		 " (--dtb-as-is: the file unchanged)", dtb, qb->dtb_prop, qb->dtb_node, out);
	ret = 1;
out:
	if (fd >= 0)
		close(fd);
	free(b);
	return ret;
}
