/* build.h - `rpifs build`: the cross build that fills ROOTFS.
 *
 * Names: every function or variable a file of src/build/ exports starts
 * with that file's name: build_fs.c exports build_fs_*, build_run.c
 * build_run_*, build_stage.c build_stage_*, and build.c build_* (build_main
 * and the allocation helpers below). So a symbol in `nm -g
 * librpifs-build.a` names the file it comes from, and none can collide with
 * the engine's (tree_*, image_*...) or a library's (libarchive's
 * archive_*). Everything else is static.
 */
#ifndef RPIFS_BUILD_H
#define RPIFS_BUILD_H

/* argv[0] is "build". Returns the process exit status. */
int build_main(int argc, char **argv);

/* asprintf and strdup that cannot fail: out of memory ends the program (a
 * build tool has nothing sensible to do then, and every caller stays
 * short). */
char *build_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *build_xstrdup(const char *s);

#endif
