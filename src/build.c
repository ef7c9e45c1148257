/* build.c - placeholder until `rpifs build` lands. */
#include <stdio.h>
#include "build.h"
int build_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rpifs: build: not implemented yet\n"); return 2; }
