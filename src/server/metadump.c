/* metadump.c: placeholder; being written (issue 6). */
