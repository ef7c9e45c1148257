/* placeholder: written by the FAT32 module */
int main(void) { return 77; }
