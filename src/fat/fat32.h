/* fat32.h - the FAT32 boot partition, laid out lazily.
 *
 * The builder lays out every file contiguously and emits regions: boot
 * sector, FSInfo and their backups, the FAT (one buffer serving both
 * copies, covering only used clusters), directory tables (memory) and file
 * data (source file regions).
 */
#ifndef RPIFS_FAT32_H
#define RPIFS_FAT32_H

#include <stdint.h>
#include "tree.h"
#include "holes.h"
#include "regions.h"

#define FAT32_MIN_CLUSTERS 65525u

struct fat32_geom {
	uint32_t total_sectors;
	uint32_t sectors_per_cluster;
	uint32_t reserved_sectors;  /* 32 */
	uint32_t fat_sectors;       /* per FAT */
	uint32_t clusters;          /* data clusters */
	uint64_t data_start;        /* byte offset of cluster 2 in the partition */
};

struct fat32_opts {
	uint64_t part_start;        /* bytes from disk start (HiddSec = /512) */
	uint64_t part_size;         /* bytes */
	const char *label;          /* up to 11 characters; "BOOT" */
	uint32_t volume_id;
	int64_t clamp_time;         /* SOURCE_DATE_EPOCH, or -1 */
	struct holes *holes;        /* out, if set: the bytes a reader depends on
	                             * (reserved sectors, both FATs, every used
	                             * cluster) are declared here */
};

/* Geometry for a partition of part_size bytes (Microsoft's cluster table,
 * at least 65 525 clusters). -ENOSPC when the partition is too small. */
int fat32_geometry(uint64_t part_size, struct fat32_geom *g);

/* Clusters needed by the content of dir (NULL: empty) for a cluster size. */
int fat32_clusters_needed(const struct tree *t, const struct tree_node *dir,
			  uint32_t cluster_size, uint64_t *clusters);

/* Build the partition from dir (NULL: an empty filesystem) into out.
 * Errors (content too large, a file of 4 GiB or more) are logged. */
int fat32_build(const struct tree *t, const struct tree_node *dir,
		const struct fat32_opts *opts, struct regions *out);

#endif
