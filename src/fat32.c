/* fat32.c - placeholder until the module lands. */
#include <errno.h>
#include "fat32.h"
int fat32_geometry(uint64_t part_size, struct fat32_geom *g) { (void)part_size; (void)g; return -ENOSYS; }
int fat32_clusters_needed(const struct tree *t, const struct tree_node *dir, uint32_t cs, uint64_t *c) { (void)t; (void)dir; (void)cs; *c = 0; return -ENOSYS; }
int fat32_build(const struct tree *t, const struct tree_node *dir, const struct fat32_opts *o, struct regions *out) { (void)t; (void)dir; (void)o; (void)out; return -ENOSYS; }
