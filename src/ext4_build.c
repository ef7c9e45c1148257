/* ext4_build.c - placeholder until the module lands. */
#include <errno.h>
#include "ext4_build.h"
int ext4_size_needed(const struct tree *t, const struct tree_node *skip, uint64_t *bytes) { (void)t; (void)skip; *bytes = 0; return -ENOSYS; }
int ext4_build(const struct tree *t, const struct tree_node *skip, const struct ext4_opts *o, struct regions *out) { (void)t; (void)skip; (void)o; (void)out; return -ENOSYS; }
