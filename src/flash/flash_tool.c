/* flash_tool.c - rpifs-flash, the program behind `rpifs flash` and `rpifs
 * export` (rpifs runs it with the subcommand as argv[1]). Kept out of rpifs
 * itself so that the mount does not load libarchive and its libraries. */
#include <stdio.h>
#include <string.h>
#include "flash.h"
#include "log.h"

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "flash"))
		return flash_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "export"))
		return export_main(argc - 1, argv + 1);
	log_error("usage: rpifs flash ... | rpifs export ... (rpifs --help)");
	return 2;
}
