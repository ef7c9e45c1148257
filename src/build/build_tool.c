/* build_tool.c - rpifs-build, the program behind `rpifs build` (which
 * runs it): the cross build that fills ROOTFS (build.c). Kept out of rpifs
 * itself so that the mount does not load libarchive and its libraries. */
#include "build.h"

int main(int argc, char **argv)
{
	return build_main(argc, argv);
}
