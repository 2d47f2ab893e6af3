/* dumpfile.c: placeholder; being written (issue 6). */
