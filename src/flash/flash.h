/* flash.h - the two commands of rpifs-flash. argv[0] is the command's
 * name ("flash", "export"); the exit status is returned. */
#ifndef RPIFS_FLASH_FLASH_H
#define RPIFS_FLASH_FLASH_H

int flash_main(int argc, char **argv);
int export_main(int argc, char **argv);

/* The byte at which the common chunk size and alignment of both commands
 * are set: large writes (a card's erase blocks are 4 MiB or smaller),
 * aligned for O_DIRECT. */
#define FLASH_CHUNK (4u << 20)
#define FLASH_ALIGN 4096u

#endif
