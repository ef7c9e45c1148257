/* build.h - `rpifs build`: the cross build that fills ROOTFS. */
#ifndef RPIFS_BUILD_H
#define RPIFS_BUILD_H

/* argv[0] is "build". Returns the process exit status. */
int build_main(int argc, char **argv);

#endif
